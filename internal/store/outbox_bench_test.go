package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// BenchmarkOutboxSentAndNext measures the sender's one transaction a
// message: the previous message recorded sent (with the mailbox's send
// activity) and the next one's attempt.
func BenchmarkOutboxSentAndNext(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			f := newOutboxFixture(b, storetest.Open(b, dialect))
			ids := make([]int64, b.N+1)
			for i := range ids {
				ids[i] = f.queue(b, i, rcpt)
			}
			now := f.now
			f.write(b, func(tx *store.Tx) error {
				if _, err := tx.ClaimOutbox(ctx, f.mb.ID, "w1", now, now.Add(time.Hour)); err != nil {
					return err
				}
				_, err := tx.BeginAttempt(ctx, ids[0], "w1", now)
				return err
			})
			b.ResetTimer()
			for i := range b.N {
				err := f.db.Write(ctx, func(tx *store.Tx) error {
					if err := tx.MarkSent(ctx, ids[i], now, false); err != nil {
						return err
					}
					if err := tx.RecordSentActivity(ctx, f.mb.ID, now); err != nil {
						return err
					}
					began, err := tx.BeginAttempt(ctx, ids[i+1], "w1", now)
					if err == nil && !began {
						b.Fatalf("attempt %d not recorded", i+1)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
