package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/postdesk/postdesk/internal/fakeidp"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runFakeIdP(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "fakeidp")
	addr := fs.String("addr", "127.0.0.1:10080", "address to listen on (keep it on loopback)")
	var accounts, apps listFlag
	fs.Var(&accounts, "account", "an account that can sign in, as address[:password] (repeatable)")
	fs.Var(&apps, "app", "a registered app, as client_id:client_secret:redirect_uri (repeatable; secret may be empty)")
	reuse := fs.String("refresh-token-reuse", fakeidp.ReuseRevokesGrant.String(),
		"what a spent refresh token presented again does: revoke (the whole grant, the strictest providers), refuse (that token only) or allow (Microsoft)")
	delay := fs.Duration("token-delay", 0, "how long the token endpoint takes to answer (e.g. 1.5s)")
	delayMax := fs.Duration("token-delay-max", 0, "with --token-delay, answer after a random time between the two (e.g. 3.5s)")
	accessLifetime := fs.Duration("access-token-lifetime", fakeidp.DefaultAccessTokenLifetime, "lifetime of access tokens")
	if done, err := parse(fs, args); done {
		return err
	}
	policy, err := fakeidp.ParseReusePolicy(*reuse)
	if err != nil {
		return fmt.Errorf("fakeidp: --refresh-token-reuse: %w", err)
	}
	if *delay < 0 || *delayMax < 0 || *accessLifetime <= 0 {
		return fmt.Errorf("fakeidp: delays cannot be negative, nor the access token lifetime zero")
	}
	opts := fakeidp.Options{Logger: slog.New(slog.NewTextHandler(e.stderr, nil)), RefreshTokenReuse: policy,
		TokenDelay: *delay, TokenDelayMax: *delayMax, AccessTokenLifetime: *accessLifetime}
	for _, a := range accounts {
		address, password, _ := strings.Cut(a, ":")
		if !strings.Contains(address, "@") {
			return fmt.Errorf("fakeidp: --account %q: want address[:password]", a)
		}
		opts.Accounts = append(opts.Accounts, fakeidp.Account{Address: address, Name: address, Password: password})
	}
	for _, a := range apps {
		parts := strings.SplitN(a, ":", 3)
		if len(parts) != 3 || parts[0] == "" || !strings.Contains(parts[2], "://") {
			return fmt.Errorf("fakeidp: --app %q: want client_id:client_secret:redirect_uri", a)
		}
		opts.Apps = append(opts.Apps, fakeidp.App{ClientID: parts[0], Name: parts[0], ClientSecret: parts[1], RedirectURIs: []string{parts[2]}})
	}
	return fakeidp.Run(ctx, *addr, opts)
}
