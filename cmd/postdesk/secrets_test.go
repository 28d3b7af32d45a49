package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

func TestSecretsRotate(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	ctx := context.Background()
	if _, _, err := cli(t, vars, "", "migrate"); err != nil {
		t.Fatal(err)
	}
	db := openForTest(t, vars)
	oldKey, err := store.LoadKey(vars["POSTDESK_DATA"], "")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := store.NewVault(oldKey)
	var mbID int64
	err = db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
		if err != nil {
			return err
		}
		mbID = mb.ID
		sealed, err := v.Seal([]byte("refresh-token-123"), store.MailboxSecret(mb.ID, "refresh_token"))
		if err != nil {
			return err
		}
		return tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: mb.ID, Kind: store.AuthOAuth, Provider: "microsoft",
			RefreshTokenSealed: sealed, State: store.AuthOK})
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, vars, "", "secrets", "rotate")
	if err != nil || !strings.Contains(out, "re-sealed 1 secrets") {
		t.Fatalf("rotate: %v %q", err, out)
	}
	newKey, err := store.LoadKey(vars["POSTDESK_DATA"], "")
	if err != nil || string(newKey) == string(oldKey) {
		t.Fatalf("key file not replaced: %v", err)
	}
	if _, err := os.Stat(filepath.Join(vars["POSTDESK_DATA"], nextKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the rotation's temporary key file is left behind: %v", err)
	}
	a, err := db.MailboxAuth(ctx, mbID)
	if err != nil {
		t.Fatal(err)
	}
	nv, _ := store.NewVault(newKey)
	got, err := nv.Open(a.RefreshTokenSealed, store.MailboxSecret(mbID, "refresh_token"))
	if err != nil || string(got) != "refresh-token-123" {
		t.Fatalf("open under the new key: %q %v", got, err)
	}
	if _, err := v.Open(a.RefreshTokenSealed, store.MailboxSecret(mbID, "refresh_token")); err == nil {
		t.Fatal("the old key still opens the re-sealed secret")
	}
}
