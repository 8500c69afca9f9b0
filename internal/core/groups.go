package core

import (
	"context"

	"postfach/internal/store"
)

// GroupInput creates or renames a group.
type GroupInput struct {
	Name      *string `json:"name,omitempty"`
	MemberIDs []int64 `json:"member_ids,omitempty"`
}

// CreateGroup adds a group, optionally with members.
func (s *Service) CreateGroup(ctx context.Context, a Actor, in GroupInput) (store.Group, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Group{}, err
	}
	var v validator
	name := v.text("name", deref(in.Name), true, 120)
	if err := v.err(); err != nil {
		return store.Group{}, err
	}
	var g store.Group
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if g, err = tx.CreateGroup(ctx, tid, name); err != nil {
			return err
		}
		for _, uid := range in.MemberIDs {
			if _, err := tx.User(ctx, tid, uid); err != nil {
				return invalid("member_ids", "error.unknown_user", map[string]string{"value": itoa(int(uid))})
			}
			if err := tx.AddGroupMember(ctx, tid, g.ID, uid); err != nil {
				return err
			}
		}
		if g, err = tx.Group(ctx, tid, g.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "group.create", idStr("group", g.ID), name)
	})
	return g, fromStore(err, "name", "error.duplicate")
}

// UpdateGroup renames a group and, when MemberIDs is given, sets its members.
func (s *Service) UpdateGroup(ctx context.Context, a Actor, id int64, in GroupInput) (store.Group, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Group{}, err
	}
	var g store.Group
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Group(ctx, tid, id)
		if err != nil {
			return err
		}
		if in.Name != nil {
			var v validator
			name := v.text("name", *in.Name, true, 120)
			if err := v.err(); err != nil {
				return err
			}
			if err := tx.RenameGroup(ctx, tid, id, name); err != nil {
				return err
			}
		}
		if in.MemberIDs != nil {
			want := map[int64]bool{}
			for _, uid := range in.MemberIDs {
				if _, err := tx.User(ctx, tid, uid); err != nil {
					return invalid("member_ids", "error.unknown_user", map[string]string{"value": itoa(int(uid))})
				}
				want[uid] = true
				if err := tx.AddGroupMember(ctx, tid, id, uid); err != nil {
					return err
				}
			}
			for _, uid := range cur.MemberIDs {
				if !want[uid] {
					if err := tx.RemoveGroupMember(ctx, tid, id, uid); err != nil {
						return err
					}
				}
			}
		}
		if g, err = tx.Group(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "group.update", idStr("group", id), g.Name+" members="+joinIDs(g.MemberIDs))
	})
	return g, fromStore(err, "name", "error.duplicate")
}

func joinIDs(ids []int64) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += itoa(int(id))
	}
	return s
}

// AddGroupMember puts a user into a group: from then on the user sees the group's mailboxes.
func (s *Service) AddGroupMember(ctx context.Context, a Actor, groupID, userID int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Group(ctx, tid, groupID); err != nil {
			return err
		}
		if _, err := tx.User(ctx, tid, userID); err != nil {
			return err
		}
		if err := tx.AddGroupMember(ctx, tid, groupID, userID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "group.member_add", idStr("group", groupID), idStr("user", userID))
	}), "", "")
}

// RemoveGroupMember takes a user out of a group.
func (s *Service) RemoveGroupMember(ctx context.Context, a Actor, groupID, userID int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RemoveGroupMember(ctx, tid, groupID, userID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "group.member_remove", idStr("group", groupID), idStr("user", userID))
	}), "", "")
}

// Group reads a group.
func (s *Service) Group(ctx context.Context, a Actor, id int64) (store.Group, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Group{}, err
	}
	g, err := s.DB.Read().Group(ctx, tid, id)
	return g, fromStore(err, "", "")
}

// Groups lists the groups.
func (s *Service) Groups(ctx context.Context, a Actor) ([]store.Group, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Groups(ctx, tid)
	if list == nil {
		list = []store.Group{}
	}
	return list, fromStore(err, "", "")
}

// DeleteGroup removes a group; its grants end with it.
func (s *Service) DeleteGroup(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		g, err := tx.Group(ctx, tid, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteGroup(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "group.delete", idStr("group", id), g.Name)
	}), "", "")
}
