package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestRenameMailbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mb store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support"); err != nil {
				return err
			}
			return tx.RenameMailbox(ctx, mb.ID, "Customer care")
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Mailbox(ctx, mb.ID)
		if err != nil || got.Name != "Customer care" || got.Address != "support@example.com" {
			t.Errorf("after rename: %+v, %v", got, err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.RenameMailbox(ctx, mb.ID+100, "x") })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rename a missing mailbox: %v, want ErrNotFound", err)
		}
	})
}
