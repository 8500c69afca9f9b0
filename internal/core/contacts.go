package core

import (
	"context"

	"postfach/internal/store"
)

// ContactInput creates or changes a contact pushed by the host application.
type ContactInput struct {
	Email       *string `json:"email,omitempty"`
	Name        *string `json:"name,omitempty"`
	ExternalRef *string `json:"external_ref,omitempty"`
}

func applyContact(v *validator, c *store.Contact, in ContactInput, create bool) {
	if in.Email != nil || create {
		c.Email = v.address("email", deref(in.Email), true)
	}
	if in.Name != nil {
		c.Name = v.text("name", *in.Name, false, 200)
	}
	if in.ExternalRef != nil {
		c.ExternalRef = v.text("external_ref", *in.ExternalRef, false, 200)
	}
}

// CreateContact adds a contact (customer record).
func (s *Service) CreateContact(ctx context.Context, a Actor, in ContactInput) (store.Contact, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return store.Contact{}, err
	}
	var v validator
	var c store.Contact
	applyContact(&v, &c, in, true)
	if err := v.err(); err != nil {
		return c, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		c, err = tx.CreateContact(ctx, tid, c)
		return err
	})
	return c, fromStore(err, "email", "error.duplicate")
}

// UpdateContact changes a contact.
func (s *Service) UpdateContact(ctx context.Context, a Actor, id int64, in ContactInput) (store.Contact, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return store.Contact{}, err
	}
	var out store.Contact
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		c, err := tx.Contact(ctx, tid, id)
		if err != nil {
			return err
		}
		var v validator
		applyContact(&v, &c, in, false)
		if err := v.err(); err != nil {
			return err
		}
		out = c
		return tx.UpdateContact(ctx, tid, c)
	})
	return out, fromStore(err, "email", "error.duplicate")
}

// Contact reads a contact.
func (s *Service) Contact(ctx context.Context, a Actor, id int64) (store.Contact, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return store.Contact{}, err
	}
	c, err := s.DB.Read().Contact(ctx, tid, id)
	return c, fromStore(err, "", "")
}

// Contacts lists contacts.
func (s *Service) Contacts(ctx context.Context, a Actor) ([]store.Contact, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Contacts(ctx, tid)
	if list == nil {
		list = []store.Contact{}
	}
	return list, fromStore(err, "", "")
}

// DeleteContact removes a contact.
func (s *Service) DeleteContact(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteContact(ctx, tid, id) }), "", "")
}
