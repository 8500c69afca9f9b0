// Package policy is the one place that answers "may this user send as, or reply as, this
// address?" (features M1–M7) and can explain the answer. The compose page, the API, SMTP
// submission, the outbound queue at enqueue and again at dequeue all ask it; nothing else
// decides.
//
// The rules, in order:
//  1. The tenant's system mailbox (Systemmail-Box) is always offered.
//  2. Mailboxes of the tenant and global mailboxes of any tenant are offered as sender when
//     flagged Absender and as reply-to when flagged Antwort — if they carry no rights
//     restriction (Benutzerrechte), or an open grant names the user or one of their groups.
//     An inactive additional mailbox is not offered; hosted mailboxes and mail accounts keep
//     sending when inactive, because "inactive" stops their receiving only (seed 003, H4).
//  3. When the tenant policy allows it (M2), the user's own e-mail address is offered too;
//     it goes out through the system transport, since Postfach holds no login for it.
//  4. Last, the duplicate-address rule (M7) when a mailbox has the user's own address.
package policy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"postfach/internal/store"
)

// Transport says which server carries a message.
type Transport string

const (
	TransportSystem  Transport = "system"  // the operator's system transport (smarthost or direct MX)
	TransportMailbox Transport = "mailbox" // the mailbox's own SMTP server (mit Authentifizierung)
)

// Option keys.
const (
	KeySystem = "system"
	KeyOwn    = "own"
)

// MailboxKey is the option key of a mailbox.
func MailboxKey(id int64) string { return "mailbox:" + strconv.FormatInt(id, 10) }

// Option is one entry of the Absenderadresse or Antwortadresse dropdown.
type Option struct {
	Key         string    `json:"key"`
	Address     string    `json:"address"`
	DisplayName string    `json:"display_name"` // what the recipient sees in From:/Reply-To:
	Label       string    `json:"label"`        // "Name (address)", as in the manual
	Kind        string    `json:"kind"`         // system, additional, hosted, account, own
	MailboxID   int64     `json:"mailbox_id,omitempty"`
	Transport   Transport `json:"transport"`
	// TransportMailboxID is the mailbox whose SMTP server carries the mail (Transport mailbox),
	// which differs from MailboxID when the own address was merged with a mailbox (M7).
	TransportMailboxID int64 `json:"transport_mailbox_id,omitempty"`
}

// Options are what a user may choose from.
type Options struct {
	Senders []Option `json:"senders"`
	Replies []Option `json:"replies"`
}

// Find returns the option with key in list.
func Find(list []Option, key string) (Option, bool) {
	for _, o := range list {
		if o.Key == key {
			return o, true
		}
	}
	return Option{}, false
}

// FindAddress returns the option for an address in list.
func FindAddress(list []Option, address string) (Option, bool) {
	address = store.NormalizeAddress(address)
	for _, o := range list {
		if o.Address == address {
			return o, true
		}
	}
	return Option{}, false
}

// Label formats an option the way the manual shows it: "Benutzergruppenverwaltung (cel-test08@celanio.com)".
func Label(name, address string) string {
	if strings.TrimSpace(name) == "" {
		return address
	}
	return name + " (" + address + ")"
}

// sendsWhenInactive reports whether a mailbox kind keeps sending while inactive.
func sendsWhenInactive(kind string) bool {
	return kind == store.KindHosted || kind == store.KindAccount
}

func usableForSending(m store.Mailbox) bool { return m.Active || sendsWhenInactive(m.Kind) }

func transportOf(m store.Mailbox) (Transport, int64) {
	if m.WithAuth && m.SMTP.Host != "" {
		return TransportMailbox, m.ID
	}
	return TransportSystem, 0
}

func mailboxOption(m store.Mailbox, user store.User) Option {
	name := m.DisplayName
	if m.Kind == store.KindHosted && name == "" {
		// H6: a hosted mailbox without its own e-mail name shows the user's name.
		name = user.DisplayName
	}
	key := MailboxKey(m.ID)
	if m.Kind == store.KindSystem {
		key = KeySystem
	}
	t, tid := transportOf(m)
	return Option{Key: key, Address: m.Address, DisplayName: name, Label: Label(name, m.Address), Kind: m.Kind, MailboxID: m.ID, Transport: t, TransportMailboxID: tid}
}

// Compute applies the rules to loaded data. usable must hold the mailboxes that pass the
// grant check (store.DB.SenderCandidates); Compute needs no database and is what the table
// tests exercise.
func Compute(tenant store.Tenant, user store.User, usable []store.Mailbox) Options {
	var senders, replies []Option
	seen := map[int64]bool{}
	byID := map[int64]store.Mailbox{}
	for _, m := range usable {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		byID[m.ID] = m
		if m.TenantID != tenant.ID && !m.Global {
			continue // defence in depth: never another tenant's private mailbox
		}
		if !usableForSending(m) {
			continue
		}
		o := mailboxOption(m, user)
		if m.Sender || m.Kind == store.KindSystem {
			senders = append(senders, o)
		}
		if m.Reply || m.Kind == store.KindSystem {
			replies = append(replies, o)
		}
	}
	if tenant.AllowOwnAddress && user.Email != "" {
		addr := store.NormalizeAddress(user.Email)
		own := Option{Key: KeyOwn, Address: addr, DisplayName: user.DisplayName, Label: Label(user.DisplayName, addr), Kind: "own", Transport: TransportSystem}
		senders = applyDuplicateRule(tenant.DuplicatePolicy, append(senders, own), byID)
		replies = applyDuplicateRule(tenant.DuplicatePolicy, append(replies, own), byID)
	}
	sortOptions(senders)
	sortOptions(replies)
	return Options{Senders: nonNil(senders), Replies: nonNil(replies)}
}

func nonNil(o []Option) []Option {
	if o == nil {
		return []Option{}
	}
	return o
}

// applyDuplicateRule resolves the own address against mailboxes with the same address (M7).
func applyDuplicateRule(policy string, list []Option, byID map[int64]store.Mailbox) []Option {
	ownIdx := slices.IndexFunc(list, func(o Option) bool { return o.Key == KeyOwn })
	if ownIdx < 0 {
		return list
	}
	own := list[ownIdx]
	var dups []int
	for i, o := range list {
		if o.Key != KeyOwn && o.Address == own.Address {
			dups = append(dups, i)
		}
	}
	if len(dups) == 0 {
		return list
	}
	switch policy {
	case store.DuplicateBoth:
		return list
	case store.DuplicateMailbox:
		return slices.Delete(list, ownIdx, ownIdx+1)
	default: // store.DuplicateUserName, the manual's default
		// One entry under the user's name; it authenticates through the mailbox's SMTP
		// when the mailbox has its own login (seed 000, "Doppelungen der Postfächer").
		merged := own
		for _, i := range dups {
			m := byID[list[i].MailboxID]
			if t, tid := transportOf(m); t == TransportMailbox {
				merged.Transport, merged.TransportMailboxID = t, tid
			}
			if merged.MailboxID == 0 {
				merged.MailboxID = m.ID
			}
		}
		out := make([]Option, 0, len(list)-len(dups))
		for i, o := range list {
			if i == ownIdx {
				out = append(out, merged)
			} else if !slices.Contains(dups, i) {
				out = append(out, o)
			}
		}
		return out
	}
}

func sortOptions(list []Option) {
	// Lower-case each label once, not in every comparison: this runs on every compose page.
	lower := make(map[string]string, len(list))
	for _, o := range list {
		lower[o.Key+"\x00"+o.Label] = strings.ToLower(o.Label)
	}
	slices.SortStableFunc(list, func(a, b Option) int {
		if (a.Kind == store.KindSystem) != (b.Kind == store.KindSystem) {
			if a.Kind == store.KindSystem {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(lower[a.Key+"\x00"+a.Label], lower[b.Key+"\x00"+b.Label]), cmp.Compare(a.Key, b.Key))
	})
}

// Engine answers policy questions from the database.
type Engine struct {
	DB *store.DB
}

// Options loads what user userID of tenantID may choose as sender and reply-to.
func (e *Engine) Options(ctx context.Context, tenantID, userID int64) (Options, error) {
	tenant, user, err := e.DB.TenantAndUser(ctx, tenantID, userID)
	if err != nil {
		return Options{}, fmt.Errorf("policy: %w", err)
	}
	if !user.Active {
		return Options{Senders: []Option{}, Replies: []Option{}}, nil
	}
	usable, err := e.DB.SenderCandidates(ctx, tenantID, userID)
	if err != nil {
		return Options{}, fmt.Errorf("policy: %w", err)
	}
	return Compute(tenant, user, usable), nil
}

// Role says which dropdown a question is about.
type Role string

const (
	RoleSender Role = "sender"
	RoleReply  Role = "reply"
)

// Decision is the answer to "may user U use address X as sender/reply-to?".
type Decision struct {
	Allowed bool              `json:"allowed"`
	Option  *Option           `json:"option,omitempty"` // the entry that carries the address, when allowed
	Rule    string            `json:"rule"`             // message key naming the rule that decided
	Params  map[string]string `json:"params"`
}

// Explain decides and names the rule, for "why can't I send from X?" and for every refusal.
func (e *Engine) Explain(ctx context.Context, tenantID, userID int64, address string, role Role) (Decision, error) {
	address = store.NormalizeAddress(address)
	params := map[string]string{"address": address}
	opts, err := e.Options(ctx, tenantID, userID)
	if err != nil {
		return Decision{}, err
	}
	list := opts.Senders
	if role == RoleReply {
		list = opts.Replies
	}
	if o, ok := FindAddress(list, address); ok {
		params["label"] = o.Label
		rule := "policy.allowed"
		if o.Key == KeyOwn && o.MailboxID != 0 {
			rule = "policy.allowed_merged"
		}
		return Decision{Allowed: true, Option: &o, Rule: rule, Params: params}, nil
	}
	tx := e.DB.Read()
	tenant, err := tx.Tenant(ctx, tenantID)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %w", err)
	}
	user, err := tx.User(ctx, tenantID, userID)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %w", err)
	}
	deny := func(rule string) (Decision, error) { return Decision{Rule: rule, Params: params}, nil }
	if !user.Active {
		return deny("policy.user_inactive")
	}
	candidates, err := tx.MailboxesByAddress(ctx, tenantID, address)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %w", err)
	}
	ownAddress := user.Email != "" && store.NormalizeAddress(user.Email) == address
	if len(candidates) == 0 {
		if ownAddress && !tenant.AllowOwnAddress {
			return deny("policy.own_address_disabled")
		}
		// Deliberately the same answer whether or not another tenant has the address:
		// a refusal must not reveal other tenants' data.
		return deny("policy.not_a_mailbox")
	}
	usable, err := e.DB.SenderCandidates(ctx, tenantID, userID)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: %w", err)
	}
	granted := map[int64]bool{}
	for _, m := range usable {
		granted[m.ID] = true
	}
	// Report the most specific reason of the first candidate, in the order an admin fixes them.
	m := candidates[0]
	params["mailbox"] = Label(m.DisplayName, m.Address)
	switch {
	case role == RoleSender && !m.Sender && m.Kind != store.KindSystem:
		return deny("policy.no_sender_flag")
	case role == RoleReply && !m.Reply && m.Kind != store.KindSystem:
		return deny("policy.no_reply_flag")
	case !usableForSending(m):
		return deny("policy.mailbox_inactive")
	case m.Restricted && !granted[m.ID]:
		return deny("policy.no_grant")
	case ownAddress && tenant.DuplicatePolicy == store.DuplicateMailbox:
		return deny("policy.duplicate_mailbox")
	}
	return deny("policy.not_a_mailbox")
}

// Resolve checks a chosen option key for a role and returns the option, or a Decision that
// explains the refusal. It is what every write path calls.
func (e *Engine) Resolve(ctx context.Context, tenantID, userID int64, key string, role Role) (Option, *Decision, error) {
	opts, err := e.Options(ctx, tenantID, userID)
	if err != nil {
		return Option{}, nil, err
	}
	list := opts.Senders
	if role == RoleReply {
		list = opts.Replies
	}
	if o, ok := Find(list, key); ok {
		return o, nil, nil
	}
	// Explain in terms of the address behind the key, when it names one.
	address := ""
	if id, ok := strings.CutPrefix(key, "mailbox:"); ok {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			if m, err := e.DB.Read().MailboxVisible(ctx, tenantID, n); err == nil {
				address = m.Address
			}
		}
	} else if key == KeyOwn {
		if u, err := e.DB.Read().User(ctx, tenantID, userID); err == nil {
			address = u.Email
		}
	} else if strings.Contains(key, "@") {
		address = key
	}
	if address == "" {
		d := Decision{Rule: "policy.unknown_option", Params: map[string]string{"address": key}}
		return Option{}, &d, nil
	}
	d, err := e.Explain(ctx, tenantID, userID, address, role)
	if err != nil {
		return Option{}, nil, err
	}
	if d.Allowed && d.Option != nil {
		return *d.Option, nil, nil
	}
	return Option{}, &d, nil
}
