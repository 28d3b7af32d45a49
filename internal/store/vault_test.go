package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestLoadKeyCreatesFileOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := store.LoadKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, store.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	k2, err := store.LoadKey(dir, "")
	if err != nil || string(k1) != string(k2) || len(k1) != store.KeySize {
		t.Fatalf("second load = %x, %v; want the same %d-byte key", k2, err, store.KeySize)
	}
	if err := os.Chmod(filepath.Join(dir, store.KeyFileName), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadKey(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: err = %v, want one that says chmod 600", err)
	}
}

func TestLoadKeyConfigured(t *testing.T) {
	t.Parallel()
	key := store.GenerateKey()
	got, err := store.LoadKey("", store.EncodeKey(key))
	if err != nil || string(got) != string(key) {
		t.Fatalf("LoadKey(configured) = %x, %v", got, err)
	}
	for _, bad := range []string{"c2hvcnQ=", "not base64 at all!"} {
		_, err := store.LoadKey(t.TempDir(), bad)
		if err == nil || !strings.Contains(err.Error(), "POSTDESK_SECRET_KEY") {
			t.Errorf("LoadKey(%q) err = %v, want a clear POSTDESK_SECRET_KEY error", bad, err)
		}
	}
}

func TestVaultSealOpen(t *testing.T) {
	t.Parallel()
	v, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("1.AXkA-refresh-token-value")
	sealed, err := v.Seal(secret, store.MailboxSecret(12, "refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1:"+v.KeyID()+":") || strings.Contains(sealed, string(secret)) {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := v.Open(sealed, store.MailboxSecret(12, "refresh_token")); err != nil || string(got) != string(secret) {
		t.Fatalf("open = %q, %v", got, err)
	}
	// Bound to its row and column.
	for _, b := range []string{store.MailboxSecret(13, "refresh_token"), store.MailboxSecret(12, "access_token")} {
		if _, err := v.Open(sealed, b); !errors.Is(err, store.ErrSealed) {
			t.Errorf("open as %s: err = %v, want ErrSealed", b, err)
		}
	}
	other, _ := store.NewVault(store.GenerateKey())
	if _, err := other.Open(sealed, store.MailboxSecret(12, "refresh_token")); !errors.Is(err, store.ErrSealed) {
		t.Errorf("open with another key: err = %v, want ErrSealed", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := v.Open(tampered, store.MailboxSecret(12, "refresh_token")); !errors.Is(err, store.ErrSealed) {
		t.Errorf("open tampered: err = %v", err)
	}
	if s, _ := v.Seal(nil, "x"); s != "" {
		t.Errorf("empty secret sealed to %q, want empty", s)
	}
}

func TestVaultRotate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		oldKey, newKey := store.GenerateKey(), store.GenerateKey()
		oldV, _ := store.NewVault(oldKey)
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var mbID int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support@example.com", "Support")
			if err != nil {
				return err
			}
			mbID = mb.ID
			rt, _ := oldV.Seal([]byte("refresh-secret"), store.MailboxSecret(mb.ID, "refresh_token"))
			at, _ := oldV.Seal([]byte("access-secret"), store.MailboxSecret(mb.ID, "access_token"))
			if err := tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: mb.ID, Kind: store.AuthOAuth, Provider: "microsoft",
				RefreshTokenSealed: rt, AccessTokenSealed: at, UpdatedAt: now}); err != nil {
				return err
			}
			ver, _ := oldV.Seal([]byte("verifier-secret"), store.OAuthStateSecret("abc"))
			return tx.CreateOAuthState(ctx, store.OAuthState{StateHash: "abc", MailboxID: mb.ID, SessionID: 1, Provider: "microsoft",
				VerifierSealed: ver, Nonce: "n", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := store.Rotate(ctx, db, oldKey, newKey)
		if err != nil || n != 3 {
			t.Fatalf("rotate = %d, %v; want 3 values re-sealed", n, err)
		}
		newV, _ := store.NewVault(newKey)
		a, err := db.MailboxAuth(ctx, mbID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := newV.Open(a.RefreshTokenSealed, store.MailboxSecret(mbID, "refresh_token")); err != nil || string(got) != "refresh-secret" {
			t.Errorf("refresh token after rotation = %q, %v", got, err)
		}
		if got, err := newV.Open(a.AccessTokenSealed, store.MailboxSecret(mbID, "access_token")); err != nil || string(got) != "access-secret" {
			t.Errorf("access token after rotation = %q, %v", got, err)
		}
		if _, err := oldV.Open(a.RefreshTokenSealed, store.MailboxSecret(mbID, "refresh_token")); err == nil {
			t.Error("the old key still opens a rotated value")
		}
		st, _ := db.OAuthState(ctx, "abc")
		if got, err := newV.Open(st.VerifierSealed, store.OAuthStateSecret("abc")); err != nil || string(got) != "verifier-secret" {
			t.Errorf("verifier after rotation = %q, %v", got, err)
		}
		if n, err := store.Rotate(ctx, db, oldKey, newKey); err != nil || n != 0 {
			t.Errorf("second rotation = %d, %v; want 0, nil", n, err)
		}
		// A value no key opens aborts the rotation and changes nothing.
		if _, err := store.Rotate(ctx, db, store.GenerateKey(), store.GenerateKey()); err == nil {
			t.Error("rotation with the wrong old key succeeded")
		}
		if b, _ := db.MailboxAuth(ctx, mbID); b.RefreshTokenSealed != a.RefreshTokenSealed {
			t.Error("a failed rotation changed a value")
		}
	})
}
