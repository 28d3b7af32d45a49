package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/postdesk/postdesk/internal/fakegraph"
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
	var graphMailboxes listFlag
	fs.Var(&graphMailboxes, "graph-mailbox", "a mailbox the stand-in Graph (at /graph/v1.0) hosts besides the accounts' own, e.g. a shared mailbox or a customer (repeatable)")
	if done, err := parse(fs, args); done {
		return err
	}
	if err := noArgs(fs); err != nil {
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
	idp := fakeidp.New(opts)
	// The stand-in Graph beside it, at <url>/graph/v1.0 (printed in the
	// banner), hosting every account's mailbox: mail sent through it to a
	// hosted address lands in that mailbox's inbox.
	var hosted []string
	for _, a := range opts.Accounts {
		hosted = append(hosted, a.Address)
	}
	graph := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: append(hosted, graphMailboxes...),
		Logger: opts.Logger})
	idp.Mount("/graph/", http.StripPrefix("/graph", graph), "graph", "/graph/v1.0")
	return idp.ListenAndServe(ctx, *addr)
}
