package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/postdesk/postdesk/internal/store"
)

//go:embed templates/layout.html templates/views/*.html templates/partials/*.html
var templateFiles embed.FS

// viewNames declares every page template (templates/views/<name>.html).
// parseViews fails when a file is not declared here or a name has no file.
var viewNames = []string{"admin_emails", "admin_email_form", "admin_email_remove", "admin_user", "admin_users", "error", "invite", "login", "oauth_error",
	"profile", "ticket_list", "ticket_show", "admin_webhooks", "admin_webhook"}

// views are the parsed page templates, each combined with the layout.
type views struct {
	byName map[string]*template.Template
}

// parseViews parses every view with its time functions writing in loc.
func parseViews(a *assets, loc *time.Location) (*views, error) {
	layout, err := templateFiles.ReadFile("templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("read layout template: %w", err)
	}
	files, err := fs.Glob(templateFiles, "templates/views/*.html")
	if err != nil {
		return nil, err
	}
	v := &views{byName: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if !slices.Contains(viewNames, name) {
			return nil, fmt.Errorf("template %s is not declared in viewNames", f)
		}
		body, err := templateFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(funcs(a, loc)).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("parse layout template: %w", err)
		}
		if _, err := t.New(name).Parse(string(body)); err != nil {
			return nil, fmt.Errorf("parse template %s: %w", f, err)
		}
		// Partials (templates/partials) are blocks several views share.
		if _, err := t.ParseFS(templateFiles, "templates/partials/*.html"); err != nil {
			return nil, fmt.Errorf("parse partial templates: %w", err)
		}
		for _, block := range []string{"title", "content"} {
			if t.Lookup(block) == nil {
				return nil, fmt.Errorf("template %s does not define %q", f, block)
			}
		}
		v.byName[name] = t
	}
	for _, name := range viewNames {
		if v.byName[name] == nil {
			return nil, fmt.Errorf("view %q is declared but templates/views/%s.html is missing", name, name)
		}
	}
	return v, nil
}

// page is what the layout needs; every view's data embeds it.
type page struct {
	User    *store.User
	CSRF    string
	Banners []Banner
	Nav     string // the active navigation item: "tickets", "emails"
	Version string
}

// base fills the layout's data for a request.
func (h *Handler) base(r *http.Request, nav string) page {
	p := page{Nav: nav, Version: h.version}
	if s := current(r); s.user.ID != 0 {
		u := s.user
		p.User, p.CSRF = &u, s.sess.CSRFToken
		if h.banners != nil {
			p.Banners = h.banners(r.Context())
		}
	}
	return p
}

// render writes a view with a status. A template error becomes a 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	vs, err := h.views.get(zoneOf(r.Context()))
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	t := vs.byName[name]
	if t == nil {
		h.serverError(w, r, fmt.Errorf("render: view %q is not declared", name))
		return
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		if name == "error" {
			h.log.Error("render error page", "err", err)
			http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
			return
		}
		h.serverError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// funcs are the templates' functions; times are written in loc.
func funcs(a *assets, loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"asset":   a.url,
		"ago":     func(t time.Time) string { return agoIn(t, time.Now(), loc) },
		"abstime": func(t time.Time) string { return pageTime(t, loc) },
		"isotime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":    func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
		"status":  statusLabel,
		"lower":   strings.ToLower,
		"join":    strings.Join,
		"fieldOf": fieldOf,
		"deliveryState": func(d store.WebhookDelivery) []string {
			label, class := deliveryState(d)
			return []string{label, class}
		},
		"eventLabel": func(kind string) string {
			if l, ok := eventLabels[kind]; ok {
				return l[0]
			}
			if kind == "webhook.test" {
				return "Test event"
			}
			return kind
		},
		"clip": clip,
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
}

// pageTime is timeIn for a page: the line may break only after the
// comma ("3 Mar 2026," / "10:02 UTC"), never inside the day or the time.
func pageTime(t time.Time, loc *time.Location) string {
	day, clock, _ := strings.Cut(timeIn(t, loc), ", ")
	nb := func(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") }
	return nb(day) + ", " + nb(clock)
}

func statusLabel(s string) string {
	switch s {
	case store.StatusOpen:
		return "Open"
	case store.StatusPending:
		return "Pending"
	case store.StatusSolved:
		return "Solved"
	}
	return s
}

// agoFrom is a short relative time: "just now", "5 min ago", "3 h ago",
// "yesterday", "4 days ago", then a date (of UTC).
func agoFrom(t, now time.Time) string { return agoIn(t, now, time.UTC) }

// agoIn is agoFrom with dates of loc.
func agoIn(t, now time.Time, loc *time.Location) string {
	t = t.In(loc)
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < -time.Minute:
		return t.Format("2 Jan 2006")
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	case d < 48*time.Hour:
		return "yesterday"
	case d < 7*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	case t.Year() == now.Year():
		return t.Format("2 Jan")
	default:
		return t.Format("2 Jan 2006")
	}
}

// clip is s cut at the last space within its first n bytes (or at n, on a
// character's boundary), with "…", or s whole when it is no longer.
func clip(n int, s string) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if i := strings.LastIndexByte(s[:cut], ' '); i > n/2 {
		cut = i
	}
	return strings.TrimRight(s[:cut], " ") + "…"
}
