package store

import (
	"context"
	"sync/atomic"
	"testing"
)

// BenchmarkConcurrentWriters measures small write transactions from many goroutines (IMAP
// flag changes, queue outcomes): how many InTx calls per second the store makes durable.
//
//	go test -run '^$' -bench ConcurrentWriters -cpu 2 ./internal/store/
func BenchmarkConcurrentWriters(b *testing.B) {
	db := openGroupCommitDB(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8) // 16 writers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := db.InTx(ctx, func(tx *Tx) error {
				_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES (?)`, i)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	st := db.GroupCommitStats()
	b.ReportMetric(float64(st.Writers)/float64(max(st.Commits, 1)), "writers/commit")
}
