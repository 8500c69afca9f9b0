package mailstore

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"postfach/internal/store"
)

// TestVisibility runs the one filter over an assignment history:
//
//	t0  alice, bob and the group "vertrieb" (erin) are assigned to the VIP mailbox
//	t1  mail: vip-to (VIP in To:), vip-cc (VIP only in Cc:), team (no VIP), private (frank's account)
//	t2  bob is unassigned, carol is assigned
//	t3  mail: vip-later (VIP in To:)
func TestVisibility(t *testing.T) {
	for _, noCcBcc := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_cc_bcc=%v", noCcBcc), func(t *testing.T) {
			f := newFixture(t)
			if noCcBcc {
				f.tenant.VIPNoCcBcc = true
				f.tx(func(tx *store.Tx) error { return tx.UpdateTenant(f.ctx, f.tenant) })
			}
			alice, bob, carol, dave, erin, frank := f.user("alice", "AL"), f.user("bob", "BO"), f.user("carol", "CA"), f.user("dave", "DA"), f.user("erin", "ER"), f.user("frank", "FR")
			vip := f.mailbox(store.KindHosted, "chef@makler.example", true, "")
			team := f.mailbox(store.KindHosted, "team@makler.example", false, "")
			private := f.mailbox(store.KindAccount, "frank@privat.example", false, `{"private_owner":"FR"}`)

			f.grant(vip.ID, alice)
			bobGrant := f.grant(vip.ID, bob)
			var group store.Group
			f.tx(func(tx *store.Tx) error {
				var err error
				group, err = tx.CreateGroup(f.ctx, f.tenant.ID, "vertrieb")
				if err != nil {
					return err
				}
				if err := tx.AddGroupMember(f.ctx, f.tenant.ID, group.ID, erin); err != nil {
					return err
				}
				_, err = tx.AddGrant(f.ctx, f.tenant.ID, store.Grant{MailboxID: vip.ID, GroupID: &group.ID})
				return err
			})
			f.tick()

			ids := map[int64]string{}
			deliver := func(name, to, cc string, mbs ...store.Mailbox) int64 {
				raw := fmt.Sprintf("From: k@example.org\nTo: %s\nCc: %s\nSubject: %s\nMessage-ID: <%s@example.org>\n\nx\n", to, cc, name, name)
				id := f.deliver(raw, "k@example.org", mbs...).Messages[0].ID
				ids[id] = name
				return id
			}
			deliver("vip-to", "chef@makler.example", "", vip)
			deliver("vip-cc", "team@makler.example", "chef@makler.example", team, vip)
			deliver("team", "team@makler.example", "", team)
			privateID := deliver("private", "frank@privat.example", "", private)
			f.tick()

			f.endGrant(bobGrant)
			f.grant(vip.ID, carol)
			f.tick()
			deliver("vip-later", "chef@makler.example", "", vip)

			visible := func(user int64) string {
				var names []string
				f.tx(func(tx *store.Tx) error {
					list, err := List(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: user}, store.MessageFilter{})
					for _, m := range list {
						if n, ok := ids[m.ID]; ok {
							names = append(names, n)
						}
					}
					n, cerr := Count(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: user}, store.MessageFilter{})
					if cerr == nil && n != len(list) {
						t.Errorf("user %d: count %d, list %d", user, n, len(list))
					}
					return err
				})
				slices.Sort(names)
				return strings.Join(names, " ")
			}
			// With the option, mail that has the VIP mailbox only in Cc is not protected.
			ccOpen := map[bool]string{false: "", true: "vip-cc "}[noCcBcc]
			cases := []struct {
				name string
				user int64
				want string
			}{
				{"assigned throughout", alice, "team vip-cc vip-later vip-to"},
				{"unassigned later keeps earlier mail only", bob, "team vip-cc vip-to"},
				{"assigned later sees later mail only", carol, strings.TrimSpace(ccOpen + "team vip-later")},
				{"never assigned", dave, strings.TrimSpace(ccOpen + "team")},
				{"assigned through a group", erin, "team vip-cc vip-later vip-to"},
				{"private owner", frank, strings.TrimSpace("private " + ccOpen + "team")},
			}
			for _, c := range cases {
				if got := visible(c.user); got != normalise(c.want) {
					t.Errorf("%s: sees %q, want %q", c.name, got, normalise(c.want))
				}
			}

			// Reading a hidden message is "not found", never "forbidden".
			f.tx(func(tx *store.Tx) error {
				if _, err := Read(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: dave}, privateID); err == nil {
					t.Error("dave read frank's private mail")
				}
				return nil
			})

			// Filed at a contact, private mail becomes visible to everyone who sees the contact.
			kunde := f.contact("k@example.org")
			f.tx(func(tx *store.Tx) error {
				_, err := FileAtContact(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: frank}, privateID, kunde, "frank")
				return err
			})
			if got := visible(dave); !strings.Contains(got, "private") {
				t.Errorf("filed private mail hidden from dave: %q", got)
			}
			// Another tenant's user id sees nothing of this tenant.
			f.tx(func(tx *store.Tx) error {
				list, err := List(f.ctx, tx, Viewer{TenantID: f.tenant.ID + 1000, UserID: alice}, store.MessageFilter{})
				if len(list) != 0 {
					t.Errorf("foreign tenant sees %d messages", len(list))
				}
				return err
			})
		})
	}
}

func normalise(s string) string {
	f := strings.Fields(s)
	slices.Sort(f)
	return strings.Join(f, " ")
}
