package api

// mailRoutes is the extension point for the mail endpoints; the team working on them owns this file.
func (a *API) mailRoutes() []Route { return nil }
