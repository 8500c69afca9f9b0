package fetch

import (
	"context"
	"fmt"
	"time"

	"postfach/internal/mailstore"
	"postfach/internal/pop3"
	"postfach/internal/store"
)

// pop3 fetches the maildrop. Every message is identified by its UIDL (RFC 1939 §7); the
// messages are stored in batches, and only when all are committed are ours marked with DELE
// and the session ended with QUIT, which is when the server deletes them (RFC 1939 §6). Any
// error drops the connection without QUIT, so the server deletes nothing of this session.
func (r *sourceRun) pop3(ctx context.Context) error {
	user, secret, oauth, err := r.credentials(ctx)
	if err != nil {
		return err
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := pop3.NewClient(conn, pop3.WithMaxMessageSize(r.f.MaxMessageBytes))
	if err != nil {
		conn.Close()
		return fmt.Errorf("fetch: pop3 greeting: %w", err)
	}
	quit := false
	defer func() {
		if !quit {
			_ = c.Close() // no QUIT: the server rolls back this session's DELEs
		}
	}()
	if r.as.Receive.Security == "starttls" {
		if err := c.StartTLS(ctx, r.f.tlsConfig(r.as.Receive.Host)); err != nil {
			return fmt.Errorf("fetch: pop3 stls: %w", err)
		}
	}
	if oauth {
		err = c.AuthXOAUTH2(ctx, user, secret)
	} else {
		err = c.Login(ctx, user, secret)
	}
	if err != nil {
		return fmt.Errorf("fetch: pop3 login: %w", err)
	}
	uidls, err := c.UIDL(ctx)
	if err != nil {
		return fmt.Errorf("fetch: pop3 uidl (the server must support UIDL; without it nothing is fetched): %w", err)
	}
	sizes, err := c.List(ctx)
	if err != nil {
		return fmt.Errorf("fetch: pop3 list: %w", err)
	}
	size := make(map[int]int64, len(sizes))
	for _, l := range sizes {
		size[l.Num] = l.Size
	}
	known, err := r.f.DB.Read().POP3UIDLs(ctx, r.mb.ID)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	onServer := make(map[string]bool, len(uidls))
	for _, u := range uidls {
		onServer[u.UID] = true
	}
	var gone []string
	for u := range known {
		if !onServer[u] {
			gone = append(gone, u)
		}
	}
	if len(gone) > 0 {
		if err := r.commit(ctx, func(tx *store.Tx) error { return tx.ForgetPOP3UIDLs(ctx, r.mb.ID, gone) }); err != nil {
			return err
		}
	}
	// A maildrop we never fetched from brings old mail: no out-of-office replies to it.
	quiet := len(known) == 0
	type msg struct {
		uidl string
		m    *mailstore.Prepared
	}
	var batch []msg
	var batchBytes int64
	renewed := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.commit(ctx, func(tx *store.Tx) error {
			b := mailstore.NewBatch(tx)
			for _, m := range batch {
				id, err := r.storeMessage(ctx, tx, b, "", false, m.m)
				if err != nil {
					return err
				}
				if err := tx.RecordPOP3UIDL(ctx, r.mb.ID, m.uidl, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range batch {
			known[m.uidl] = true
		}
		batch, batchBytes, renewed = batch[:0], 0, time.Now()
		return nil
	}
	for _, u := range uidls {
		if known[u.UID] {
			continue
		}
		if size[u.Num] > r.f.MaxMessageBytes {
			r.warn = fmt.Errorf("fetch: message %s has %d bytes, over the limit of %d; left on the server", u.UID, size[u.Num], r.f.MaxMessageBytes)
			continue
		}
		raw, err := c.Retr(ctx, u.Num)
		if err != nil {
			return fmt.Errorf("fetch: pop3 retr: %w", err)
		}
		if time.Since(renewed) > r.f.Lease/3 {
			// A slow server: keep the lease while the batch downloads.
			if err := r.commit(ctx, func(*store.Tx) error { return nil }); err != nil {
				return err
			}
			renewed = time.Now()
		}
		batch = append(batch, msg{u.UID, r.prepare("pop3", raw, quiet)})
		batchBytes += int64(len(raw))
		if len(batch) >= r.f.BatchMessages || batchBytes >= r.f.BatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if r.as.Receive.DeleteOnServer {
		deleted := 0
		for _, u := range uidls {
			if !known[u.UID] {
				continue
			}
			if err := c.Dele(ctx, u.Num); err != nil {
				return fmt.Errorf("fetch: pop3 dele: %w", err)
			}
			deleted++
		}
		quit = true
		if err := c.Quit(ctx); err != nil {
			// The deletions may not have happened; the next run deletes them again.
			return fmt.Errorf("fetch: pop3 quit: %w", err)
		}
		r.res.Deleted += deleted
		return nil
	}
	quit = true
	if err := c.Quit(ctx); err != nil {
		return fmt.Errorf("fetch: pop3 quit: %w", err)
	}
	return nil
}
