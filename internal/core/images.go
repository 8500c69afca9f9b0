package core

import (
	"bytes"
	"image"
	_ "image/gif" // decoders for uploaded profile pictures
	_ "image/jpeg"
	_ "image/png"
)

// imageInfo checks that data is a PNG, JPEG or GIF and returns its size and MIME type.
// Only the header is decoded; the picture is stored as uploaded.
func imageInfo(data []byte) (w, h int, contentType string, ok bool) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 10000 || cfg.Height > 10000 {
		return 0, 0, "", false
	}
	return cfg.Width, cfg.Height, "image/" + format, true
}
