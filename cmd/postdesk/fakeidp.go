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
	if done, err := parse(fs, args); done {
		return err
	}
	opts := fakeidp.Options{Logger: slog.New(slog.NewTextHandler(e.stderr, nil))}
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
