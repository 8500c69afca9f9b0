package api

// accountsRoutes is the extension point for the accounts endpoints; the team working on them owns this file.
func (a *API) accountsRoutes() []Route { return nil }
