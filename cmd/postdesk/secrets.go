package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/store"
)

// nextKeyFile holds a rotation's new key until the rotation has finished,
// so that a rotation interrupted after re-sealing never strands secrets.
const nextKeyFile = store.KeyFileName + ".next"

// loadVault opens the vault with the configured key (or the key file),
// plus an unfinished rotation's new key if one is lying in the data folder.
func loadVault(cfg *config.Config) (*store.Vault, error) {
	key, err := store.LoadKey(cfg.DataDir, cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	var extra [][]byte
	if next, err := readNextKey(cfg.DataDir); err == nil {
		extra = append(extra, next)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return store.NewVault(key, extra...)
}

// checkKeys refuses to serve with a key that opens none of the stored
// secrets: a process started with another key (a second host given no
// POSTDESK_SECRET_KEY makes a secret.key of its own) took mailboxes it
// could not sign in to, and held them, failing, while the others could.
// Secrets some of which it cannot open (sealed with a key no longer
// configured) are only logged: those mailboxes need a new sign-in.
func checkKeys(ctx context.Context, a *app, vault *store.Vault) error {
	ids, err := a.db.SealedKeyIDs(ctx)
	if err != nil {
		return err
	}
	readable, unreadable := 0, 0
	var others []string
	for id, n := range ids {
		if vault.Has(id) {
			readable += n
			continue
		}
		unreadable += n
		others = append(others, fmt.Sprintf("%s (%d)", id, n))
	}
	slices.Sort(others)
	switch {
	case unreadable == 0:
		return nil
	case readable > 0 || a.cfg.SecretsLost:
		a.log.Warn("stored secrets sealed with a key this process does not have: their mailboxes need a new sign-in or password",
			"secrets", unreadable, "keys", strings.Join(others, ", "), "key", vault.KeyID())
		return nil
	}
	return fmt.Errorf("secret key %s opens none of the %d secrets in the database (mailbox passwords and sign-ins, webhook secrets), which were sealed with key %s: "+
		"every Postdesk process on one database needs the same key. Set POSTDESK_SECRET_KEY (or copy the data folder's secret.key) from a process that works, and start again. "+
		"If that key is lost for good, start with --secrets-lost: each mailbox then needs its password or sign-in again",
		vault.KeyID(), unreadable, strings.Join(others, ", "))
}

func readNextKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, nextKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := store.LoadKey("", string(b))
	if err != nil {
		return nil, fmt.Errorf("%s (an unfinished key rotation): %w", path, err)
	}
	return key, nil
}

func runSecrets(ctx context.Context, e env, args []string) error {
	args, done, err := subcommand(e, "secrets", "rotate", args)
	if done {
		return err
	}
	a, _, done, err := start(ctx, e, "secrets", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	cfg := a.cfg
	// A running serve keeps the key it started with, and could open none
	// of the secrets once they are sealed again: every mailbox would fail.
	live, err := a.db.LiveSyncers(ctx, time.Now().Add(-20*time.Second)) // a live one beats every 1-5 s
	if err != nil {
		return err
	}
	if len(live) > 0 {
		return fmt.Errorf("secrets rotate: %d postdesk serve process(es) use this database (%s): stop them all first, rotate, then start them with the new key; "+
			"running on, they keep the old key and can open no secret (a process stopped in the last 20 seconds may still be listed: wait a little)", len(live), strings.Join(live, ", "))
	}
	oldKey, err := store.LoadKey(cfg.DataDir, cfg.SecretKey)
	if err != nil {
		return err
	}
	newKey := store.GenerateKey()
	keyPath := filepath.Join(cfg.DataDir, store.KeyFileName)
	nextPath := filepath.Join(cfg.DataDir, nextKeyFile)
	if cfg.SecretKey == "" {
		// Keep the new key on disk before any secret is sealed with it.
		os.Remove(nextPath)
		if err := store.WriteKeyFile(nextPath, newKey, false); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "new key (set POSTDESK_SECRET_KEY to it before restarting):\n%s\n", store.EncodeKey(newKey))
	}
	n, err := store.Rotate(ctx, a.db, oldKey, newKey)
	if err != nil {
		return fmt.Errorf("secrets rotate: %w (nothing was changed)", err)
	}
	if cfg.SecretKey == "" {
		if err := store.WriteKeyFile(keyPath, newKey, true); err != nil {
			return fmt.Errorf("secrets rotate: re-sealed %d secrets but could not replace %s: %w (the new key is in %s; Postdesk keeps working with it)", n, keyPath, err, nextPath)
		}
		os.Remove(nextPath)
	}
	fmt.Fprintf(e.stdout, "re-sealed %d secrets under key %s\n", n, store.KeyID(newKey))
	return nil
}
