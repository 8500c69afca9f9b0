package api

// sendRoutes is the extension point for the send endpoints; the team working on them owns this file.
func (a *API) sendRoutes() []Route { return nil }
