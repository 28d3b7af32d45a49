package store

// The vault seals the secrets Postdesk keeps (OAuth refresh and access
// tokens, mailbox passwords, PKCE verifiers) with AES-256-GCM.
//
// A sealed value is "v1:<key id>:<base64url(nonce || ciphertext || tag)>".
// The key id (the first 8 hex digits of SHA-256 over a label and the key)
// says which key sealed it, so a vault can hold the current key and older
// ones during a rotation. Each value is sealed with associated data naming
// its row and column ("mailbox:12:refresh_token"): a sealed value copied to
// another row or column does not open. The empty secret is stored as the
// empty string, so "no token" needs no key.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// KeySize is the length of a vault key in bytes (AES-256).
const KeySize = 32

// KeyFileName is the key file created in the data folder when no key is
// configured.
const KeyFileName = "secret.key"

const sealVersion = "v1"

// ErrSealed means a sealed value could not be opened: a different key, a
// value moved to another row, or corrupted data.
var ErrSealed = errors.New("sealed secret cannot be opened")

// LoadKey returns the vault key: configured (base64, from
// POSTDESK_SECRET_KEY) when set, else the key file in dataDir, created with
// mode 0600 on first start. A key file that other users can read is refused.
func LoadKey(dataDir, configured string) ([]byte, error) {
	if configured = strings.TrimSpace(configured); configured != "" {
		key, err := decodeKey(configured)
		if err != nil {
			return nil, fmt.Errorf("POSTDESK_SECRET_KEY: %w", err)
		}
		return key, nil
	}
	if dataDir == "" {
		return nil, errors.New("load secret key: no POSTDESK_SECRET_KEY and no data folder")
	}
	path := filepath.Join(dataDir, KeyFileName)
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
		key = GenerateKey()
		err = WriteKeyFile(path, key, false)
		if errors.Is(err, fs.ErrExist) { // another process created it first
			return readKeyFile(path)
		}
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	return key, err
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s can be read by other users (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret key file: %w", err)
	}
	key, err := decodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("the key must be %d bytes, base64-encoded, but it is %d bytes (make one with: head -c 32 /dev/urandom | base64)", KeySize, len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("the key is not valid base64 (make one with: head -c 32 /dev/urandom | base64)")
}

// GenerateKey returns a new random key.
func GenerateKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails (crypto/rand)
	return key
}

// EncodeKey returns key in the form LoadKey reads.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// WriteKeyFile writes key to path with mode 0600. Unless replace is set, an
// existing file is an error wrapping fs.ErrExist; with replace, the file is
// swapped atomically (for rotation).
func WriteKeyFile(path string, key []byte, replace bool) error {
	if len(key) != KeySize {
		return fmt.Errorf("write secret key file: key is %d bytes, want %d", len(key), KeySize)
	}
	target := path
	if replace {
		target = path + ".new"
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create secret key file: %w", err)
	}
	_, err = f.WriteString(EncodeKey(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && replace {
		err = os.Rename(target, path)
	}
	if err != nil {
		os.Remove(target)
		return fmt.Errorf("write secret key file: %w", err)
	}
	return nil
}

// KeyID names a key without revealing it.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("postdesk vault key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// Vault seals and opens secrets. It is safe for concurrent use.
type Vault struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewVault returns a vault sealing with key and opening values sealed with
// key or any of previous.
func NewVault(key []byte, previous ...[]byte) (*Vault, error) {
	v := &Vault{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("vault key is %d bytes, want %d", len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(k)
		if i == 0 {
			v.current = id
		}
		if _, ok := v.aeads[id]; !ok {
			v.aeads[id] = aead
		}
	}
	return v, nil
}

// KeyID is the id of the key the vault seals with.
func (v *Vault) KeyID() string { return v.current }

// SecretBinding is the associated data binding a sealed value to its row
// and column, e.g. SecretBinding("mailbox", 12, "refresh_token").
func SecretBinding(table string, row any, column string) string {
	return fmt.Sprintf("%s:%v:%s", table, row, column)
}

// Seal encrypts plaintext for the place named by binding. The empty
// plaintext seals to "".
func (v *Vault) Seal(plaintext []byte, binding string) (string, error) {
	if len(plaintext) == 0 {
		return "", nil
	}
	aead := v.aeads[v.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce)
	out := aead.Seal(nonce, nonce, plaintext, v.ad(v.current, binding))
	return sealVersion + ":" + v.current + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed for binding. "" opens to nil.
func (v *Vault) Open(sealed, binding string) ([]byte, error) {
	if sealed == "" {
		return nil, nil
	}
	id, err := sealedKeyID(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := v.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: it was sealed with key %s, which is not configured (set the key it was sealed with, or re-authenticate)", ErrSealed, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(sealVersion)+1+len(id)+1:])
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: malformed value", ErrSealed)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], v.ad(id, binding))
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key, or the value belongs to another row (%s)", ErrSealed, binding)
	}
	return plain, nil
}

// ad is the associated data: the format version, key id and binding.
func (v *Vault) ad(keyID, binding string) []byte {
	return []byte(sealVersion + ":" + keyID + ":" + binding)
}

func sealedKeyID(sealed string) (string, error) {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != sealVersion || len(parts[1]) != 8 {
		return "", fmt.Errorf("%w: unknown format", ErrSealed)
	}
	return parts[1], nil
}

// sealedColumn is one place that holds sealed values: its table, key
// column and the sealed columns with their binding names.
type sealedColumn struct {
	table, keyCol, binding string
	cols                   map[string]string // column -> binding column name
}

var sealedColumns = []sealedColumn{
	{table: "mailbox_auth", keyCol: "mailbox_id", binding: "mailbox", cols: map[string]string{
		"password_sealed":      "password",
		"refresh_token_sealed": "refresh_token",
		"access_token_sealed":  "access_token",
		// The Graph access token (binding "graph_access_token").
		"graph_access_token_sealed": "graph_access_token",
	}},
	{table: "oauth_states", keyCol: "state_hash", binding: "oauth_state", cols: map[string]string{
		"verifier_sealed": "verifier",
	}},
	{table: "webhooks", keyCol: "id", binding: "webhook", cols: map[string]string{
		"secret_sealed": "secret",
	}},
}

// Has reports whether the vault opens values sealed with the key keyID.
func (v *Vault) Has(keyID string) bool {
	_, ok := v.aeads[keyID]
	return ok
}

// SealedKeyIDs counts the stored sealed values by the id of the key that
// sealed them.
func (c conn) SealedKeyIDs(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, sc := range sealedColumns {
		for col := range sc.cols {
			// "v1:" + an 8-character key id + ":" + the sealed bytes.
			rows, err := c.query(ctx, `SELECT substr(`+col+`, 4, 8), COUNT(*) FROM `+sc.table+` WHERE `+col+` <> '' GROUP BY 1`)
			if err != nil {
				return nil, fmt.Errorf("read key ids of %s.%s: %w", sc.table, col, err)
			}
			for rows.Next() {
				var id string
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					rows.Close()
					return nil, err
				}
				out[id] += n
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Rotate re-seals every sealed value under newKey in one transaction and
// returns how many it re-sealed. Values already sealed with newKey are left
// as they are, so running it twice is harmless. Any value that does not
// open with oldKey or newKey aborts the rotation and changes nothing.
func Rotate(ctx context.Context, db *DB, oldKey, newKey []byte) (int, error) {
	v, err := NewVault(newKey, oldKey)
	if err != nil {
		return 0, err
	}
	n := 0
	err = db.Write(ctx, func(tx *Tx) error {
		for _, sc := range sealedColumns {
			for col, name := range sc.cols {
				c, err := tx.resealColumn(ctx, v, sc, col, name)
				if err != nil {
					return err
				}
				n += c
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rotate secret key: %w", err)
	}
	return n, nil
}

func (tx *Tx) resealColumn(ctx context.Context, v *Vault, sc sealedColumn, col, name string) (int, error) {
	rows, err := tx.query(ctx, `SELECT `+sc.keyCol+`, `+col+` FROM `+sc.table+` WHERE `+col+` <> ''`)
	if err != nil {
		return 0, fmt.Errorf("read %s.%s: %w", sc.table, col, err)
	}
	type item struct {
		raw         any // the key as scanned, for the UPDATE
		key, sealed string
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.raw, &it.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		it.key = keyString(it.raw)
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, it := range items {
		if id, _ := sealedKeyID(it.sealed); id == v.current {
			continue
		}
		binding := SecretBinding(sc.binding, it.key, name)
		plain, err := v.Open(it.sealed, binding)
		if err != nil {
			return 0, fmt.Errorf("%s %s %s: %w", sc.table, it.key, name, err)
		}
		resealed, err := v.Seal(plain, binding)
		if err != nil {
			return 0, err
		}
		if _, err := tx.exec(ctx, `UPDATE `+sc.table+` SET `+col+` = ? WHERE `+sc.keyCol+` = ?`, resealed, it.raw); err != nil {
			return 0, fmt.Errorf("update %s.%s: %w", sc.table, col, err)
		}
		n++
	}
	return n, nil
}

func keyString(v any) string {
	switch k := v.(type) {
	case int64:
		return strconv.FormatInt(k, 10)
	case []byte:
		return string(k)
	case string:
		return k
	}
	return fmt.Sprint(v)
}
