package web

import (
	"context"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
)

// Every time a page shows is written in the viewer's time zone (their
// profile's; UTC when none). The zone travels with the request (the
// session middleware puts it beside the user), and the templates are
// parsed once per zone in use (zonedViews), their time functions bound to
// it, so a template writes {{abstime .At}} and never thinks of zones.

// zoneOf is the time zone of the signed-in user of ctx (UTC without one).
func zoneOf(ctx context.Context) *time.Location {
	if s, ok := ctx.Value(sessionKey).(signedInAs); ok && s.loc != nil {
		return s.loc
	}
	return time.UTC
}

// zones resolves zone names, each once. A name that no longer resolves
// (a zone removed from the database) shows UTC rather than failing a page.
type zones struct {
	mu  sync.Mutex
	loc map[string]*time.Location
}

func (z *zones) get(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if l, ok := z.loc[name]; ok {
		return l
	}
	l, err := auth.LoadZone(name)
	if err != nil {
		l = time.UTC
	}
	if z.loc == nil {
		z.loc = map[string]*time.Location{}
	}
	z.loc[name] = l
	return l
}

// zonedViews are the views parsed for each zone in use; the UTC ones are
// parsed (and checked) in New. There are at most as many entries as IANA
// zones, since users can only choose valid ones.
type zonedViews struct {
	assets *assets
	mu     sync.Mutex
	byZone map[string]*views
}

func newZonedViews(a *assets) (*zonedViews, error) {
	v, err := parseViews(a, time.UTC)
	if err != nil {
		return nil, err
	}
	return &zonedViews{assets: a, byZone: map[string]*views{time.UTC.String(): v}}, nil
}

// get returns the views whose times are written in loc.
func (z *zonedViews) get(loc *time.Location) (*views, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if v, ok := z.byZone[loc.String()]; ok {
		return v, nil
	}
	v, err := parseViews(z.assets, loc)
	if err != nil {
		return nil, err
	}
	z.byZone[loc.String()] = v
	return v, nil
}
