package i18n

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every error and policy key written in the code must have texts: a key without them
// reaches the user as "[error.something]".
func TestKeysUsedInCodeExist(t *testing.T) {
	c := MustLoad()
	key := regexp.MustCompile(`"((?:error|policy)\.[a-z_]+)"`)
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			if !c.Has(m[1]) {
				t.Errorf("%s uses %s, which has no text in locales/", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
