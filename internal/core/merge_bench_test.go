package core

import (
	"context"
	"testing"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// BenchmarkMerge50000 merges two accounts of 50,000 messages each (threads and filings
// included) through the use case, and compares it with the physical reference: one plain
// UPDATE of the same rows' mailbox_id in one transaction. Setup is not timed. Run with
// -benchtime=3x; POSTFACH_TEST_POSTGRES selects PostgreSQL.
func BenchmarkMerge50000(b *testing.B) {
	const perAccount = 50000
	ctx := context.Background()
	b.Run("merge", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db := storetest.Open(b)
			f, source, target := mergeSetup(b, db, perAccount)
			p, err := f.svc.AccountMergePreview(ctx, f.admin, source.ID, target.ID)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := f.svc.MergeAccounts(ctx, f.admin, source.ID, MergeInput{TargetID: target.ID, Confirm: p.Confirm})
			if err != nil || res.Messages != perAccount {
				b.Fatalf("merge %+v %v", res, err)
			}
		}
	})
	b.Run("plain_update", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			db := storetest.Open(b)
			f, source, target := mergeSetup(b, db, perAccount)
			b.StartTimer()
			err := db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE messages SET mailbox_id = ? WHERE tenant_id = ? AND mailbox_id = ?`, target.ID, f.tenant, source.ID)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
