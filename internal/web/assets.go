package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFiles embed.FS

// assets are the embedded static files, served under names that carry a
// hash of their content ("app.3f2a9c1b7d.css"), so they can be cached for a
// year and a new release is fetched at once.
type assets struct {
	byHashed map[string]asset  // "app.<hash>.css" -> file
	hashed   map[string]string // "app.css" -> "/static/app.<hash>.css"
}

type asset struct {
	body        []byte
	contentType string
}

func loadAssets() (*assets, error) {
	a := &assets{byHashed: map[string]asset{}, hashed: map[string]string{}}
	err := fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		ext := path.Ext(name)
		sum := sha256.Sum256(body)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:5]) + ext
		ct := map[string]string{".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".js": "text/javascript; charset=utf-8"}[ext]
		if ct == "" {
			return fmt.Errorf("static file %s: unknown type", p)
		}
		a.byHashed[hashed] = asset{body: body, contentType: ct}
		a.hashed[name] = "/static/" + hashed
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	return a, nil
}

// url is the cache-busting URL of a static file; templates call it as
// {{asset "app.css"}}. An unknown name panics at parse-time checks in tests.
func (a *assets) url(name string) (string, error) {
	u, ok := a.hashed[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return u, nil
}

// static serves an embedded file by its hashed name.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	f, ok := h.assets.byHashed[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(f.body)
}
