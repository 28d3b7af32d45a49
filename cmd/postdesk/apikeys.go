package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

func runAPIKey(ctx context.Context, e env, args []string) error {
	return dispatch(ctx, e, "apikey", args, verb{"create", apiKeyCreate}, verb{"list", apiKeyList}, verb{"revoke", apiKeyRevoke})
}

func apiKeyCreate(ctx context.Context, e env, args []string) error {
	var user, name, expires *string
	var expiresAt time.Time
	a, _, done, err := start(ctx, e, "apikey", args, func(fs *flag.FlagSet) {
		user = fs.String("user", "", "email of the user the key acts as (required)")
		name = fs.String("name", "", "a label for the key")
		expires = fs.String("expires", "", "when the key stops working: a lifetime (90d, 12h) or a date (2027-03-31, or RFC 3339); empty: never")
	}, func(*flag.FlagSet) error {
		if *user == "" {
			return errors.New("apikey create: --user is required")
		}
		var err error
		if expiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
			return fmt.Errorf("apikey create: --expires: %w", err)
		}
		return nil
	})
	if done {
		return err
	}
	defer a.close()
	u, err := keyOwner(ctx, a, "apikey create", *user, " (add one with 'postdesk user add')")
	if err != nil {
		return err
	}
	key, k, err := auth.New(a.db, 0).IssueAPIKey(ctx, auth.NewAPIKey{UserID: u.ID, Name: *name, ExpiresAt: expiresAt})
	if err != nil {
		return fmt.Errorf("apikey create: %w", err)
	}
	fmt.Fprintln(e.stdout, key)
	fmt.Fprintf(e.stderr, "(key %d, shown once: only its hash is stored)\n", k.ID)
	if !k.ExpiresAt.IsZero() {
		fmt.Fprintf(e.stderr, "(it stops working at %s)\n", k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// parseExpiry reads --expires: empty (never), a lifetime in days ("90d")
// or as a Go duration ("36h"), a date (the key ends as that UTC day
// begins) or an RFC 3339 time.
func parseExpiry(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	var at time.Time
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a number of days like 90d", v)
		}
		if n <= 0 {
			return time.Time{}, fmt.Errorf("%q: a lifetime is at least 1 day; leave --expires out for a key that never expires", v)
		}
		at = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(v); err == nil {
		at = now.Add(d)
	} else if t, err := time.Parse(time.DateOnly, v); err == nil {
		at = t
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		at = t
	} else {
		return time.Time{}, fmt.Errorf("%q is neither a lifetime (90d, 12h) nor a date (2027-03-31)", v)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("%q is not in the future", v)
	}
	if at.After(now.Add(auth.MaxKeyLifetime)) {
		return time.Time{}, fmt.Errorf("%q is more than 10 years away; leave --expires out for a key that never expires", v)
	}
	return at.UTC().Truncate(time.Millisecond), nil
}

func apiKeyList(ctx context.Context, e env, args []string) error {
	var user *string
	a, _, done, err := start(ctx, e, "apikey", args, func(fs *flag.FlagSet) {
		user = fs.String("user", "", "email of the user whose keys to list (required)")
	}, func(*flag.FlagSet) error {
		if *user == "" {
			return errors.New("apikey list: --user is required")
		}
		return nil
	})
	if done {
		return err
	}
	defer a.close()
	u, err := keyOwner(ctx, a, "apikey list", *user, "")
	if err != nil {
		return err
	}
	keys, err := auth.New(a.db, 0).APIKeys(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("apikey list: %w", err)
	}
	if len(keys) == 0 {
		fmt.Fprintf(e.stdout, "%s has no API keys: create one with 'postdesk apikey create --user %s'\n", u.Email, u.Email)
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES")
	for _, k := range keys {
		expires := "never"
		if !k.ExpiresAt.IsZero() {
			expires = k.ExpiresAt.UTC().Format(time.RFC3339)
			if k.Expired(now) {
				expires += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\n", k.ID, orDash(k.Name), k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339),
			timeOrDash(k.LastUsedAt), expires)
	}
	return tw.Flush()
}

func apiKeyRevoke(ctx context.Context, e env, args []string) error {
	var id *int64
	a, _, done, err := start(ctx, e, "apikey", args, func(fs *flag.FlagSet) {
		id = fs.Int64("id", 0, "id of the key to revoke, from 'postdesk apikey list' (required)")
	}, func(*flag.FlagSet) error {
		if *id == 0 {
			return errors.New("apikey revoke: --id is required (see 'postdesk apikey list --user E')")
		}
		if *id < 0 {
			return fmt.Errorf("apikey revoke: --id %d is not a key's id: ids are positive (see 'postdesk apikey list --user E')", *id)
		}
		return nil
	})
	if done {
		return err
	}
	defer a.close()
	k, err := auth.New(a.db, 0).RevokeAPIKey(ctx, *id, 0)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("apikey revoke: no key %d that is not already revoked", *id)
	}
	if err != nil {
		return fmt.Errorf("apikey revoke: %w", err)
	}
	fmt.Fprintf(e.stdout, "revoked key %d (%s…)\n", k.ID, k.Prefix)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// keyOwner finds the user whose keys a command works on; a missing user
// is an error in the command's words (cmd: "apikey list"), with hint after.
func keyOwner(ctx context.Context, a *app, cmd, email, hint string) (store.User, error) {
	u, err := a.db.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("%s: no user %s%s", cmd, email, hint)
	}
	return u, err
}
