package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
