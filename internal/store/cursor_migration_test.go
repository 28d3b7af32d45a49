package store_test

import (
	"context"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Migration 10 turns every IMAP checkpoint (UIDVALIDITY, last UID) into
// an opaque cursor that the IMAP transport reads back: a mailbox resumes
// where it stopped after the upgrade.
func TestCheckpointsBecomeCursors(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			cfg := store.Config{DataDir: t.TempDir()}
			if dialect == "postgres" {
				cfg.DatabaseURL = storetest.NewPostgresDatabase(t)
			}
			db, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.MigrateTo(ctx, 9); err != nil {
				t.Fatal(err)
			}
			if err := db.ExecForTest(ctx, `INSERT INTO mailboxes (id, address, name, created_at) VALUES (1, 'support@example.com', 'Support', 0)`); err != nil {
				t.Fatal(err)
			}
			for _, row := range []struct {
				folder   string
				validity int64
				uid      int64
			}{{"INBOX", 4000000000, 4294967295}, {"Junk", 7, 0}} {
				if err := db.ExecForTest(ctx, `INSERT INTO sync_checkpoints (mailbox_id, folder, uid_validity, last_uid, updated_at) VALUES (1, ?, ?, ?, 0)`,
					row.folder, row.validity, row.uid); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := db.Migrate(ctx); err != nil || n < 1 {
				t.Fatalf("migrate: %d, %v", n, err)
			}
			for folder, want := range map[string]string{"INBOX": "imap:4000000000:4294967295", "Junk": "imap:7:0", "Sent": ""} {
				if got, err := db.SyncCursor(ctx, 1, folder); err != nil || got != want {
					t.Errorf("%s: cursor %q, %v; want %q", folder, got, err, want)
				}
			}
		})
	}
}
