package web

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"postfach/internal/core"
	"postfach/internal/store"
)

// Benutzer und Gruppen (M6): users with their profile fields and pictures, groups and membership.
func (u *UI) userRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/benutzer", roleAdmin, u.userList)
	h("GET /admin/benutzer/neu", roleAdmin, u.userNew)
	h("POST /admin/benutzer", roleAdmin, u.userCreate)
	h("GET /admin/benutzer/{id}", roleAdmin, u.userEdit)
	h("POST /admin/benutzer/{id}", roleAdmin, u.userUpdate)
	h("GET /admin/benutzer/{id}/loeschen", roleAdmin, u.userDeleteConfirm)
	h("POST /admin/benutzer/{id}/loeschen", roleAdmin, u.userDelete)
	h("POST /admin/benutzer/{id}/bild", roleAdmin, u.pictureUpload)
	h("POST /admin/benutzer/{id}/bild/{order}/loeschen", roleAdmin, u.pictureDelete)
	h("GET /admin/benutzer/{id}/bild/{order}", roleAdmin, u.pictureServe)
	h("GET /admin/gruppen/neu", roleAdmin, u.groupNew)
	h("POST /admin/gruppen", roleAdmin, u.groupCreate)
	h("GET /admin/gruppen/{id}", roleAdmin, u.groupEdit)
	h("POST /admin/gruppen/{id}", roleAdmin, u.groupUpdate)
	h("GET /admin/gruppen/{id}/loeschen", roleAdmin, u.groupDeleteConfirm)
	h("POST /admin/gruppen/{id}/loeschen", roleAdmin, u.groupDelete)
}

type userListData struct {
	Users  []store.User
	Groups []groupRow
}

type groupRow struct {
	Group   store.Group
	Members []string
}

func (u *UI) userList(w http.ResponseWriter, r *http.Request, p *page) {
	users, err := u.d.Core.Users(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	groups, err := u.d.Core.Groups(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	logins := map[int64]string{}
	for _, x := range users {
		logins[x.ID] = x.Login
	}
	d := userListData{Users: users}
	for _, g := range groups {
		row := groupRow{Group: g}
		for _, id := range g.MemberIDs {
			row.Members = append(row.Members, logins[id])
		}
		d.Groups = append(d.Groups, row)
	}
	p.Title, p.Nav, p.Data = "web.users.title", "admin", d
	u.render(w, r, http.StatusOK, "users", p)
}

type userFormData struct {
	User     *store.User
	Pictures []store.Picture
	Groups   []string
	// ProfileRows is how many key/value rows the form shows.
	ProfileRows []int
}

// userValues fills the form from a stored user; profile fields become numbered rows.
func userValues(x store.User) url.Values {
	v := url.Values{"login": {x.Login}, "display_name": {x.DisplayName}, "email": {x.Email}, "short_code": {x.ShortCode},
		"role": {x.Role}, "lang": {x.Lang}}
	if x.Active {
		v.Set("active", "1")
	}
	for _, k := range sortedKeys(x.Profile) {
		v.Add("profile_key", k)
		v.Add("profile_value", x.Profile[k])
	}
	return v
}

// profileRows leaves three empty rows below the filled ones for new fields.
func profileRows(v url.Values) []int {
	n := len(v["profile_key"]) + 3
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	return rows
}

// At returns the i-th value of a repeated field (for the profile rows).
func (p *page) At(field string, i int) string {
	if vals := p.Form[field]; i < len(vals) {
		return vals[i]
	}
	return ""
}

func userInput(r *http.Request, create bool) core.UserInput {
	in := core.UserInput{Login: formStr(r, "login"), DisplayName: formStr(r, "display_name"), Email: formStr(r, "email"),
		ShortCode: formStr(r, "short_code"), Role: formStr(r, "role"), Lang: formStr(r, "lang"), Active: formBool(r, "active")}
	profile := map[string]string{}
	keys, values := r.PostForm["profile_key"], r.PostForm["profile_value"]
	for i, k := range keys {
		if strings.TrimSpace(k) == "" {
			continue
		}
		val := ""
		if i < len(values) {
			val = values[i]
		}
		profile[k] = val
	}
	in.Profile = profile
	if pw := r.PostForm.Get("password"); pw != "" || create {
		if pw != "" {
			in.Password = &pw
		}
	}
	return in
}

func (u *UI) userNew(w http.ResponseWriter, r *http.Request, p *page) {
	p.Form = url.Values{"role": {store.RoleUser}, "active": {"1"}}
	p.Title, p.Nav, p.Data = "web.users.new", "admin", userFormData{ProfileRows: profileRows(p.Form)}
	u.render(w, r, http.StatusOK, "user_form", p)
}

func (u *UI) userCreate(w http.ResponseWriter, r *http.Request, p *page) {
	x, err := u.d.Core.CreateUser(r.Context(), *p.Actor, userInput(r, true))
	if err == nil {
		u.redirect(w, r, "/admin/benutzer/"+strconv.FormatInt(x.ID, 10), "web.flash.saved")
		return
	}
	status := p.setErr(err)
	p.Form = r.PostForm
	p.Form.Del("password")
	p.Title, p.Nav, p.Data = "web.users.new", "admin", userFormData{ProfileRows: profileRows(p.Form)}
	u.render(w, r, status, "user_form", p)
}

func (u *UI) userFormData(r *http.Request, p *page, x store.User) (userFormData, error) {
	d := userFormData{User: &x}
	var err error
	if d.Pictures, err = u.d.Core.Pictures(r.Context(), *p.Actor, x.ID); err != nil {
		return d, err
	}
	groups, err := u.d.Core.Groups(r.Context(), *p.Actor)
	if err != nil {
		return d, err
	}
	for _, g := range groups {
		for _, id := range g.MemberIDs {
			if id == x.ID {
				d.Groups = append(d.Groups, g.Name)
			}
		}
	}
	return d, nil
}

func (u *UI) loadUser(w http.ResponseWriter, r *http.Request, p *page) (store.User, bool) {
	return loadByID(u, w, r, p, u.d.Core.User)
}

func (u *UI) userEdit(w http.ResponseWriter, r *http.Request, p *page) {
	x, ok := u.loadUser(w, r, p)
	if !ok {
		return
	}
	d, err := u.userFormData(r, p, x)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Form = userValues(x)
	d.ProfileRows = profileRows(p.Form)
	p.Title, p.Nav, p.Data = "web.users.edit", "admin", d
	u.render(w, r, http.StatusOK, "user_form", p)
}

func (u *UI) userUpdate(w http.ResponseWriter, r *http.Request, p *page) {
	x, ok := u.loadUser(w, r, p)
	if !ok {
		return
	}
	_, err := u.d.Core.UpdateUser(r.Context(), *p.Actor, x.ID, userInput(r, false))
	if err == nil {
		u.redirect(w, r, "/admin/benutzer/"+strconv.FormatInt(x.ID, 10), "web.flash.saved")
		return
	}
	status := p.setErr(err)
	d, derr := u.userFormData(r, p, x)
	if derr != nil {
		u.fail(w, r, p, derr)
		return
	}
	p.Form = r.PostForm
	p.Form.Del("password")
	d.ProfileRows = profileRows(p.Form)
	p.Title, p.Nav, p.Data = "web.users.edit", "admin", d
	u.render(w, r, status, "user_form", p)
}

func (u *UI) userDeleteConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	x, ok := u.loadUser(w, r, p)
	if !ok {
		return
	}
	d, err := u.userFormData(r, p, x)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	lost := []string{p.T("web.confirm.user_login", "login", x.Login)}
	if len(d.Groups) > 0 {
		lost = append(lost, p.T("web.confirm.user_groups", "groups", strings.Join(d.Groups, ", ")))
	}
	if len(d.Pictures) > 0 {
		lost = append(lost, p.T("web.confirm.user_pictures", "count", len(d.Pictures)))
	}
	id := strconv.FormatInt(x.ID, 10)
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.users.delete"), Message: p.T("web.confirm.user_deleted", "name", x.DisplayName, "login", x.Login),
		Lost: lost, Action: "/admin/benutzer/" + id + "/loeschen", Back: "/admin/benutzer/" + id, Button: p.T("web.delete")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) userDelete(w http.ResponseWriter, r *http.Request, p *page) {
	u.deleteByID(w, r, p, u.d.Core.DeleteUser, "/admin/benutzer")
}

func (u *UI) pictureUpload(w http.ResponseWriter, r *http.Request, p *page) {
	x, ok := u.loadUser(w, r, p)
	if !ok {
		return
	}
	back := "/admin/benutzer/" + strconv.FormatInt(x.ID, 10)
	order, _ := strconv.Atoi(r.PostForm.Get("order"))
	var data []byte
	var err error
	if f, _, ferr := r.FormFile("picture"); ferr == nil {
		data, err = io.ReadAll(io.LimitReader(f, 2<<20+1))
		f.Close()
	}
	if err == nil {
		_, err = u.d.Core.PutPicture(r.Context(), *p.Actor, x.ID, core.PictureInput{Order: order, Data: data})
	}
	if err != nil {
		status := p.setErr(err)
		d, derr := u.userFormData(r, p, x)
		if derr != nil {
			u.fail(w, r, p, derr)
			return
		}
		p.Form = userValues(x)
		d.ProfileRows = profileRows(p.Form)
		p.Title, p.Nav, p.Data = "web.users.edit", "admin", d
		u.render(w, r, status, "user_form", p)
		return
	}
	u.redirect(w, r, back, "web.flash.saved")
}

func (u *UI) pictureDelete(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	order, err := strconv.Atoi(r.PathValue("order"))
	if err == nil {
		err = u.d.Core.DeletePicture(r.Context(), *p.Actor, id, order)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, "/admin/benutzer/"+strconv.FormatInt(id, 10), "web.flash.deleted")
}

// pictureServe sends a stored picture; only PNG, JPEG and GIF were accepted on upload.
func (u *UI) pictureServe(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	pics, err := u.d.Core.Pictures(r.Context(), *p.Actor, id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	for _, pic := range pics {
		if strconv.Itoa(pic.Order) == r.PathValue("order") {
			w.Header().Set("Content-Type", pic.ContentType)
			w.Header().Set("Cache-Control", "private, max-age=60")
			_, _ = w.Write(pic.Data)
			return
		}
	}
	u.fail(w, r, p, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"})
}

type groupFormData struct {
	Group *store.Group
	Users []store.User
}

func (u *UI) groupForm(w http.ResponseWriter, r *http.Request, p *page, status int, g *store.Group) {
	users, err := u.d.Core.Users(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = "web.groups.new", "admin", groupFormData{Group: g, Users: users}
	if g != nil {
		p.Title = "web.groups.edit"
	}
	u.render(w, r, status, "group_form", p)
}

func groupValues(g store.Group) url.Values {
	v := url.Values{"name": {g.Name}}
	for _, id := range g.MemberIDs {
		v.Add("member", strconv.FormatInt(id, 10))
	}
	return v
}

func (u *UI) groupNew(w http.ResponseWriter, r *http.Request, p *page) {
	u.groupForm(w, r, p, http.StatusOK, nil)
}

func (u *UI) groupCreate(w http.ResponseWriter, r *http.Request, p *page) {
	_, err := u.d.Core.CreateGroup(r.Context(), *p.Actor, core.GroupInput{Name: formStr(r, "name"), MemberIDs: ids(r.PostForm["member"])})
	if err == nil {
		u.redirect(w, r, "/admin/benutzer", "web.flash.saved")
		return
	}
	status := p.setErr(err)
	p.Form = r.PostForm
	u.groupForm(w, r, p, status, nil)
}

func (u *UI) loadGroup(w http.ResponseWriter, r *http.Request, p *page) (store.Group, bool) {
	return loadByID(u, w, r, p, u.d.Core.Group)
}

func (u *UI) groupEdit(w http.ResponseWriter, r *http.Request, p *page) {
	g, ok := u.loadGroup(w, r, p)
	if !ok {
		return
	}
	p.Form = groupValues(g)
	u.groupForm(w, r, p, http.StatusOK, &g)
}

func (u *UI) groupUpdate(w http.ResponseWriter, r *http.Request, p *page) {
	g, ok := u.loadGroup(w, r, p)
	if !ok {
		return
	}
	members := ids(r.PostForm["member"])
	if members == nil {
		members = []int64{} // nobody ticked: the group is emptied, not left as it was
	}
	_, err := u.d.Core.UpdateGroup(r.Context(), *p.Actor, g.ID, core.GroupInput{Name: formStr(r, "name"), MemberIDs: members})
	if err == nil {
		u.redirect(w, r, "/admin/benutzer", "web.flash.saved")
		return
	}
	status := p.setErr(err)
	p.Form = r.PostForm
	u.groupForm(w, r, p, status, &g)
}

func (u *UI) groupDeleteConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	g, ok := u.loadGroup(w, r, p)
	if !ok {
		return
	}
	id := strconv.FormatInt(g.ID, 10)
	lost := []string{p.T("web.confirm.group_members", "count", len(g.MemberIDs)), p.T("web.confirm.group_grants", "group", g.Name)}
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.groups.delete"), Message: p.T("web.confirm.group_deleted", "group", g.Name),
		Lost: lost, Action: "/admin/gruppen/" + id + "/loeschen", Back: "/admin/gruppen/" + id, Button: p.T("web.delete")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *UI) groupDelete(w http.ResponseWriter, r *http.Request, p *page) {
	u.deleteByID(w, r, p, u.d.Core.DeleteGroup, "/admin/benutzer")
}
