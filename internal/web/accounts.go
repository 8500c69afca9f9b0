package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"postfach/internal/core"
	"postfach/internal/store"
)

// Mail-Accounts (seed 002, seed 004; A1, A2, A6–A8, C1–C7, C9): the list with the Status
// and SPF columns, Anlegen, and beside the list the account's panel with the tabs
// Einstellungen (receive, send, Privatkonto von, folders, Verbindung testen),
// Domainkonfiguration (SPF/MX/DKIM/DMARC with "SPF prüfen"), Abruf (accounts_fetch.go),
// Zusammenführen and Löschen.
// Deleting takes two confirmations, the second with the message counts; merging takes a
// confirmation that says what moves and that the source is deleted.
func (u *UI) accountRoutes(h func(string, role, handlerFunc)) {
	h("GET /admin/mail-accounts", roleAdmin, u.accountList)
	h("GET /admin/mail-accounts/neu", roleAdmin, u.accountNew)
	h("POST /admin/mail-accounts", roleAdmin, u.accountCreate)
	h("POST /admin/mail-accounts/{id}/status", roleAdmin, u.accountStatus)
	h("GET /admin/mail-accounts/{id}", roleAdmin, u.accountSettings)
	h("POST /admin/mail-accounts/{id}", roleAdmin, u.accountSave)
	h("POST /admin/mail-accounts/{id}/verbindungstest", roleAdmin, u.accountConnTest)
	h("GET /admin/mail-accounts/{id}/domain", roleAdmin, u.accountDomain)
	h("POST /admin/mail-accounts/{id}/domain", roleAdmin, u.accountDomainCheck)
	h("GET /admin/mail-accounts/{id}/zusammenfuehren", roleAdmin, u.accountMergeTab)
	h("GET /admin/mail-accounts/{id}/zusammenfuehren/bestaetigen", roleAdmin, u.accountMergeConfirm)
	h("POST /admin/mail-accounts/{id}/zusammenfuehren", roleAdmin, u.accountMerge)
	h("GET /admin/mail-accounts/{id}/loeschen", roleAdmin, u.accountDeleteFirst)
	h("GET /admin/mail-accounts/{id}/loeschen/bestaetigen", roleAdmin, u.accountDeleteSecond)
	h("POST /admin/mail-accounts/{id}/loeschen", roleAdmin, u.accountDelete)
	u.accountFetchRoutes(h)
}

const accountsPath = "/admin/mail-accounts"

func (u *UI) accountList(w http.ResponseWriter, r *http.Request, p *page) {
	showList(u, w, r, p, "web.accounts.title", "admin", "accounts", u.d.Core.Accounts)
}

func (u *UI) accountNew(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Nav = "web.accounts.new", "admin"
	p.Form = url.Values{"active": {"1"}}
	u.render(w, r, http.StatusOK, "account_new", p)
}

// accountCreate is Anlegen (A2): address, Absendername, aktiv. The new account's panel
// shows the p-addresses it was given.
func (u *UI) accountCreate(w http.ResponseWriter, r *http.Request, p *page) {
	acc, err := u.d.Core.CreateAccount(r.Context(), *p.Actor, core.AccountInput{Address: formStr(r, "address"),
		SenderName: formStr(r, "sender_name"), Active: formBool(r, "active")})
	if err == nil {
		u.redirect(w, r, idPath(accountsPath, acc.ID), "web.flash.account_created")
		return
	}
	status := p.formStatus(err)
	p.Title, p.Nav, p.Form = "web.accounts.new", "admin", r.PostForm
	u.render(w, r, status, "account_new", p)
}

func (u *UI) accountStatus(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err == nil {
		_, err = u.d.Core.SetAccountActive(r.Context(), *p.Actor, id, *formBool(r, "active"))
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, accountsPath, "web.flash.saved")
}

// accountPanel is the list on the left and one account's tab on the right.
type accountPanel struct {
	Accounts []core.Account
	Account  core.Account
	Tab      string // settings, domain, merge
	Test     *core.ConnTestResult
	Domain   *core.DomainReport
	Users    []store.User // for Privatkonto von: users with a short code
	Fetch    *fetchTab    // the Abruf tab
}

// panel loads the account of the path with the tenant's list beside it.
func (u *UI) accountPanel(w http.ResponseWriter, r *http.Request, p *page, tab string) (*accountPanel, bool) {
	acc, ok := loadByID(u, w, r, p, u.d.Core.Account)
	if !ok {
		return nil, false
	}
	list, err := u.d.Core.Accounts(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return nil, false
	}
	d := &accountPanel{Accounts: list, Account: acc, Tab: tab}
	if tab == "settings" {
		users, err := u.d.Core.Users(r.Context(), *p.Actor)
		if err != nil {
			u.fail(w, r, p, err)
			return nil, false
		}
		for _, x := range users {
			if x.ShortCode != "" {
				d.Users = append(d.Users, x)
			}
		}
	}
	p.Title, p.Nav, p.Data = "web.accounts.title", "admin", d
	return d, true
}

// accountValues fills the settings form from the stored account; passwords never.
func accountValues(a core.Account) url.Values {
	v := url.Values{"address": {a.Address}, "sender_name": {a.SenderName}, "receive.type": {a.Receive.Type},
		"receive.host": {a.Receive.Host}, "receive.security": {a.Receive.Security}, "receive.username": {a.Receive.Username},
		"send.host": {a.Send.Host}, "send.security": {a.Send.Security}, "send.username": {a.Send.Username},
		"private_owner": {a.PrivateOwner}, "folders.drafts": {a.Folders.Drafts}, "folders.trash": {a.Folders.Trash}, "folders.sent": {a.Folders.Sent}}
	if a.Receive.Port != 0 {
		v.Set("receive.port", strconv.Itoa(a.Receive.Port))
	}
	if a.Send.Port != 0 {
		v.Set("send.port", strconv.Itoa(a.Send.Port))
	}
	if a.Receive.Security == "" {
		v.Set("receive.security", "none") // seed 004: the program's default is no encryption
	}
	if a.Send.Security == "" {
		v.Set("send.security", "none")
	}
	setIf(v, "active", a.Active)
	setIf(v, "receive.delete_on_server", a.Receive.DeleteOnServer)
	setIf(v, "own_smtp", a.Send.Transport == "own_smtp")
	setIf(v, "send.auth", a.Send.Auth || a.Send.Transport != "own_smtp")
	setIf(v, "folders.copy_to_sent", a.Folders.CopyToSent)
	return v
}

var accountSecrets = []string{"receive.password", "send.password"}

func (u *UI) accountSettings(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := u.accountPanel(w, r, p, "settings")
	if !ok {
		return
	}
	p.Form = accountValues(d.Account)
	u.render(w, r, http.StatusOK, "account", p)
}

// accountInput reads the Einstellungen tab. Unticking "Eigener SMTP-Server" empties the host,
// which switches the account to the system transport. Passwords are write-only.
func accountInput(r *http.Request, p *page) core.AccountInput {
	in := core.AccountInput{Address: formStr(r, "address"), SenderName: formStr(r, "sender_name"), Active: formBool(r, "active"),
		PrivateOwner: formStr(r, "private_owner")}
	in.Receive = &core.ReceiveInput{Type: formStr(r, "receive.type"), Host: formStr(r, "receive.host"), Port: formPort(r, p, "receive.port"),
		Security: formStr(r, "receive.security"), Username: formStr(r, "receive.username"), Password: formSecret(r, "receive.password"),
		DeleteOnServer: formBool(r, "receive.delete_on_server")}
	if *in.Receive.Security == "" {
		in.Receive.Security = nil
	}
	in.Send = smtpInput(r, p, "send.")
	if r.PostForm.Get("own_smtp") == "" {
		empty := ""
		in.Send.Host = &empty
	}
	in.Folders = &core.FolderInput{Drafts: formStr(r, "folders.drafts"), Trash: formStr(r, "folders.trash"), Sent: formStr(r, "folders.sent"),
		CopyToSent: formBool(r, "folders.copy_to_sent")}
	return in
}

func (u *UI) accountSave(w http.ResponseWriter, r *http.Request, p *page) {
	acc, ok := loadByID(u, w, r, p, u.d.Core.Account)
	if !ok {
		return
	}
	in := accountInput(r, p)
	var err error
	if len(p.Errs) == 0 {
		if _, err = u.d.Core.UpdateAccount(r.Context(), *p.Actor, acc.ID, in); err == nil {
			u.redirect(w, r, idPath(accountsPath, acc.ID), "web.flash.saved")
			return
		}
	}
	u.accountSettingsAgain(w, r, p, p.formStatus(err), nil)
}

// accountSettingsAgain shows the settings tab with what was typed (minus passwords).
func (u *UI) accountSettingsAgain(w http.ResponseWriter, r *http.Request, p *page, status int, test *core.ConnTestResult) {
	errs, msg := p.Errs, p.Error
	d, ok := u.accountPanel(w, r, p, "settings")
	if !ok {
		return
	}
	p.Errs, p.Error = errs, msg
	d.Test = test
	p.Form = formWithout(r, accountSecrets...)
	u.render(w, r, status, "account", p)
}

// accountConnTest is "Verbindung testen" (C1): it tests what the form holds, saved or not,
// and shows every step with the one that failed. A typed password is used for the test only.
func (u *UI) accountConnTest(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	in := core.ConnTestInput{Protocol: "smtp"}
	prefix := "send."
	if r.PostForm.Get("protocol") != "smtp" {
		prefix = "receive."
		typ := r.PostForm.Get("receive.type")
		switch {
		case strings.HasPrefix(typ, "imap"):
			in.Protocol = "imap"
		case strings.HasPrefix(typ, "pop3"):
			in.Protocol = "pop3"
		default:
			p.Errs["receive.type"] = p.T("web.accounts.test_needs_type")
		}
	} else {
		in.AuthEnabled = formBool(r, "send.auth")
	}
	in.Host, in.Port, in.Security, in.Username = formStr(r, prefix+"host"), formPort(r, p, prefix+"port"), formStr(r, prefix+"security"), formStr(r, prefix+"username")
	if *in.Port == 0 {
		in.Port = nil
	}
	if *in.Security == "" {
		in.Security = nil
	}
	if pw := r.PostForm.Get(prefix + "password"); pw != "" {
		in.Password = &pw
	}
	if len(p.Errs) > 0 {
		u.accountSettingsAgain(w, r, p, p.formStatus(nil), nil)
		return
	}
	res, err := u.d.Core.TestAccountConnection(r.Context(), *p.Actor, id, in)
	if err != nil {
		status := p.formStatus(err)
		// The test names its fields without the form's prefix.
		for _, f := range []string{"host", "port", "security", "username", "password"} {
			if msg, ok := p.Errs[f]; ok {
				p.Errs[prefix+f] = msg
				delete(p.Errs, f)
			}
		}
		u.accountSettingsAgain(w, r, p, status, nil)
		return
	}
	u.accountSettingsAgain(w, r, p, http.StatusOK, &res)
}

// accountDomain is the Domainkonfiguration tab (A8): the last check's headline, every
// finding, and per record its status, the record found, the record to publish and advice.
func (u *UI) accountDomain(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := u.accountPanel(w, r, p, "domain")
	if !ok {
		return
	}
	rep, err := u.d.Core.AccountDomainReport(r.Context(), *p.Actor, d.Account.ID)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Domain = &rep
	u.render(w, r, http.StatusOK, "account", p)
}

// accountDomainCheck is "SPF prüfen": the background check runs within seconds.
func (u *UI) accountDomainCheck(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err == nil {
		_, err = u.d.Core.RequestDomainCheck(r.Context(), *p.Actor, id)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, idPath(accountsPath, id, "domain"), "web.flash.check_requested")
}

func (u *UI) accountMergeTab(w http.ResponseWriter, r *http.Request, p *page) {
	if _, ok := u.accountPanel(w, r, p, "merge"); ok {
		u.render(w, r, http.StatusOK, "account", p)
	}
}

// mergeConfirmPage states what moves to the target and that the source is deleted (A7).
func (u *UI) mergeConfirmPage(w http.ResponseWriter, r *http.Request, p *page, source, target int64, status int) {
	pv, err := u.d.Core.AccountMergePreview(r.Context(), *p.Actor, source, target)
	if err != nil {
		if fe := core.FieldErrors(err); len(fe) > 0 {
			// No or a wrong target: back to the tab with the field marked.
			if _, ok := u.accountPanel(w, r, p, "merge"); ok {
				status := p.setErr(err)
				p.Form = url.Values{"target_id": {strconv.FormatInt(target, 10)}}
				u.render(w, r, status, "account", p)
			}
			return
		}
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.accounts.merge"), Message: pv.Message,
		Lost:   []string{p.T("web.accounts.merge_source_deleted", "source", pv.Source.Address, "inbound", pv.Source.InboundAddress, "target", pv.Target.Address)},
		Action: idPath(accountsPath, source, "zusammenfuehren"), Back: idPath(accountsPath, source, "zusammenfuehren"), Button: p.T("web.accounts.merge_button"),
		Hidden: []hiddenField{{"target_id", strconv.FormatInt(target, 10)}, {"confirm", pv.Confirm}}}
	u.render(w, r, status, "confirm", p)
}

func (u *UI) accountMergeConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	source, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	target, _ := strconv.ParseInt(r.URL.Query().Get("target_id"), 10, 64)
	u.mergeConfirmPage(w, r, p, source, target, http.StatusOK)
}

func (u *UI) accountMerge(w http.ResponseWriter, r *http.Request, p *page) {
	source, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	target, _ := strconv.ParseInt(r.PostForm.Get("target_id"), 10, 64)
	if _, err := u.d.Core.MergeAccounts(r.Context(), *p.Actor, source, core.MergeInput{TargetID: target, Confirm: r.PostForm.Get("confirm")}); err != nil {
		if core.AsError(err).Status == http.StatusConflict {
			// Mail arrived since the confirmation: show the new figures and ask again.
			p.Error = p.T(core.AsError(err).Key)
			u.mergeConfirmPage(w, r, p, source, target, http.StatusConflict)
			return
		}
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, idPath(accountsPath, target), "web.flash.merged")
}

// accountDeleteFirst is the first confirmation (seed 002: "Sie müssen das Löschen daraufhin
// nochmals bestätigen"); it leads to the second, which has the figures.
func (u *UI) accountDeleteFirst(w http.ResponseWriter, r *http.Request, p *page) {
	acc, ok := loadByID(u, w, r, p, u.d.Core.Account)
	if !ok {
		return
	}
	p.Title, p.Nav = "web.confirm.title", "admin"
	p.Data = confirmData{Heading: p.T("web.accounts.delete"), Message: p.T("web.accounts.delete_first", "address", acc.Address),
		Lost:   []string{p.T("web.accounts.delete_inbound", "inbound", acc.InboundAddress)},
		Action: idPath(accountsPath, acc.ID, "loeschen", "bestaetigen"), Get: true, Back: idPath(accountsPath, acc.ID), Button: p.T("web.accounts.delete_continue")}
	u.render(w, r, http.StatusOK, "confirm", p)
}

// deleteSecondPage states how many messages go and how many stay in contacts' journals (A6, C7).
func (u *UI) deleteSecondPage(w http.ResponseWriter, r *http.Request, p *page, id int64, status int) {
	pv, err := u.d.Core.AccountDeletePreview(r.Context(), *p.Actor, id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := confirmData{Heading: p.T("web.accounts.delete_second"), Message: p.T("web.accounts.delete_second_lead", "address", pv.Address),
		Lost:   []string{p.T("web.accounts.delete_count", "count", pv.Counts.Deleted)},
		Kept:   []string{p.T("web.accounts.kept_count", "count", pv.Counts.Kept)},
		Action: idPath(accountsPath, id, "loeschen"), Back: idPath(accountsPath, id), Button: p.T("web.accounts.delete_final"),
		Hidden: []hiddenField{{"confirm", pv.Confirm}}}
	p.Title, p.Nav, p.Data = "web.confirm.title", "admin", d
	u.render(w, r, status, "confirm", p)
}

func (u *UI) accountDeleteSecond(w http.ResponseWriter, r *http.Request, p *page) {
	if id, err := pathID(r, "id"); err != nil {
		u.fail(w, r, p, err)
	} else {
		u.deleteSecondPage(w, r, p, id, http.StatusOK)
	}
}

func (u *UI) accountDelete(w http.ResponseWriter, r *http.Request, p *page) {
	id, err := pathID(r, "id")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if _, err := u.d.Core.DeleteAccount(r.Context(), *p.Actor, id, r.PostForm.Get("confirm")); err != nil {
		if core.AsError(err).Status == http.StatusConflict {
			p.Error = p.T(core.AsError(err).Key)
			u.deleteSecondPage(w, r, p, id, http.StatusConflict)
			return
		}
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, accountsPath, "web.flash.deleted")
}

// DomainStatus translates a record's status ("needs_include", "missing", ...) for the
// Domainkonfiguration table; an unknown status is shown as it is.
func (p *page) DomainStatus(status string) string {
	if status == "" {
		return "–"
	}
	if key := "web.dns.status." + status; p.text.Has(key) {
		return p.T(key)
	}
	return status
}

// OutcomeClass is the CSS class of a check's headline: ok, warn (must be adapted) or bad.
func (p *page) OutcomeClass(outcome string) string {
	switch outcome {
	case "ok":
		return "ok"
	case "", "temporary_failure":
		return "pending"
	case "spf_needs_include", "spf_missing":
		return "warn"
	}
	return "bad"
}
