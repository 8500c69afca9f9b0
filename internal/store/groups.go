package store

import (
	"context"
	"fmt"
)

// Group is a Benutzergruppe.
type Group struct {
	ID        int64   `json:"id"`
	TenantID  int64   `json:"tenant_id"`
	Name      string  `json:"name"`
	MemberIDs []int64 `json:"member_ids"`
	CreatedAt int64   `json:"created_at"`
}

// CreateGroup inserts a group.
func (tx *Tx) CreateGroup(ctx context.Context, tenantID int64, name string) (Group, error) {
	id, err := tx.insertID(ctx, `INSERT INTO user_groups (tenant_id, name, created_at) VALUES (?, ?, ?)`, tenantID, name, tx.now)
	if err != nil {
		return Group{}, fmt.Errorf("create group: %w", err)
	}
	return Group{ID: id, TenantID: tenantID, Name: name, CreatedAt: tx.now, MemberIDs: []int64{}}, nil
}

// RenameGroup changes a group's name.
func (tx *Tx) RenameGroup(ctx context.Context, tenantID, id int64, name string) error {
	res, err := tx.exec(ctx, `UPDATE user_groups SET name = ? WHERE tenant_id = ? AND id = ?`, name, tenantID, id)
	return affected(res, err, "rename group")
}

// Group reads a group with its members.
func (tx *Tx) Group(ctx context.Context, tenantID, id int64) (Group, error) {
	g := Group{MemberIDs: []int64{}}
	err := tx.queryRow(ctx, `SELECT id, tenant_id, name, created_at FROM user_groups WHERE tenant_id = ? AND id = ?`, tenantID, id).
		Scan(&g.ID, &g.TenantID, &g.Name, &g.CreatedAt)
	if err != nil {
		return g, fmt.Errorf("group %d: %w", id, mapErr(err))
	}
	rows, err := tx.query(ctx, `SELECT user_id FROM group_members WHERE tenant_id = ? AND group_id = ? ORDER BY user_id`, tenantID, id)
	if err != nil {
		return g, fmt.Errorf("group members: %w", err)
	}
	ids, err := collect(rows, scanInt64)
	if err != nil {
		return g, fmt.Errorf("group members: %w", err)
	}
	if ids != nil {
		g.MemberIDs = ids
	}
	return g, nil
}

func scanInt64(s interface{ Scan(...any) error }) (int64, error) {
	var v int64
	err := s.Scan(&v)
	return v, mapErr(err)
}

// Groups lists a tenant's groups with their members.
func (tx *Tx) Groups(ctx context.Context, tenantID int64) ([]Group, error) {
	rows, err := tx.query(ctx, `SELECT id, tenant_id, name, created_at FROM user_groups WHERE tenant_id = ? ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	groups, err := collect(rows, func(s interface{ Scan(...any) error }) (Group, error) {
		g := Group{MemberIDs: []int64{}}
		err := s.Scan(&g.ID, &g.TenantID, &g.Name, &g.CreatedAt)
		return g, mapErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	byID := map[int64]*Group{}
	for i := range groups {
		byID[groups[i].ID] = &groups[i]
	}
	mrows, err := tx.query(ctx, `SELECT group_id, user_id FROM group_members WHERE tenant_id = ? ORDER BY user_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list group members: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var gid, uid int64
		if err := mrows.Scan(&gid, &uid); err != nil {
			return nil, mapErr(err)
		}
		if g := byID[gid]; g != nil {
			g.MemberIDs = append(g.MemberIDs, uid)
		}
	}
	return groups, mapErr(mrows.Err())
}

// GroupsOfUser lists the ids of the groups a user belongs to.
func (tx *Tx) GroupsOfUser(ctx context.Context, tenantID, userID int64) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT group_id FROM group_members WHERE tenant_id = ? AND user_id = ? ORDER BY group_id`, tenantID, userID)
	if err != nil {
		return nil, fmt.Errorf("groups of user: %w", err)
	}
	return collect(rows, scanInt64)
}

// AddGroupMember puts a user in a group; adding twice is not an error.
func (tx *Tx) AddGroupMember(ctx context.Context, tenantID, groupID, userID int64) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM group_members WHERE tenant_id = ? AND group_id = ? AND user_id = ?`, tenantID, groupID, userID).Scan(&n); err != nil {
		return fmt.Errorf("add member: %w", mapErr(err))
	}
	if n > 0 {
		return nil
	}
	_, err := tx.exec(ctx, `INSERT INTO group_members (tenant_id, group_id, user_id) VALUES (?, ?, ?)`, tenantID, groupID, userID)
	if err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

// RemoveGroupMember takes a user out of a group.
func (tx *Tx) RemoveGroupMember(ctx context.Context, tenantID, groupID, userID int64) error {
	res, err := tx.exec(ctx, `DELETE FROM group_members WHERE tenant_id = ? AND group_id = ? AND user_id = ?`, tenantID, groupID, userID)
	return affected(res, err, "remove member")
}

// DeleteGroup removes a group; its grants end with it.
func (tx *Tx) DeleteGroup(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM user_groups WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete group")
}
