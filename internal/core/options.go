package core

import (
	"context"

	"postfach/internal/policy"
)

// SenderOptions returns what a user may choose as Absenderadresse and Antwortadresse.
// Users ask for themselves; admins may ask for any user of their tenant.
func (s *Service) SenderOptions(ctx context.Context, a Actor, userID int64) (policy.Options, error) {
	tid, err := s.checkUserScope(ctx, a, userID)
	if err != nil {
		return policy.Options{}, err
	}
	o, err := s.Policy.Options(ctx, tid, userID)
	return o, fromStore(err, "", "")
}

// Explanation is a policy decision with its text in the actor's language.
type Explanation struct {
	policy.Decision
	Message string `json:"message"`
}

// ExplainSender answers "why can (not) user U use address X as sender / reply-to?".
func (s *Service) ExplainSender(ctx context.Context, a Actor, userID int64, address string, role policy.Role) (Explanation, error) {
	tid, err := s.checkUserScope(ctx, a, userID)
	if err != nil {
		return Explanation{}, err
	}
	if role != policy.RoleSender && role != policy.RoleReply {
		return Explanation{}, invalid("role", "error.one_of", map[string]string{"allowed": "sender, reply"})
	}
	var v validator
	address = v.address("address", address, true)
	if err := v.err(); err != nil {
		return Explanation{}, err
	}
	d, err := s.Policy.Explain(ctx, tid, userID, address, role)
	if err != nil {
		return Explanation{}, fromStore(err, "", "")
	}
	return Explanation{Decision: d, Message: s.Text.T(a.Lang, d.Rule, d.Params)}, nil
}

func (s *Service) checkUserScope(ctx context.Context, a Actor, userID int64) (int64, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return 0, err
	}
	if userID == 0 {
		return 0, errNoUser
	}
	if a.Kind == ActorUser && a.UserID != userID {
		return 0, notFound(nil)
	}
	if _, err := s.DB.Read().User(ctx, tid, userID); err != nil {
		return 0, fromStore(err, "", "")
	}
	return tid, nil
}
