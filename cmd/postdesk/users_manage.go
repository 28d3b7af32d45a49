package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// The user subcommands beside add: list, role, disable, enable, reset.
// Each goes through auth.Service as the command line (store.User{}), with
// the rules Admin -> Users and the API share: never without an active
// admin; a disabled user's sessions and keys stop at once.

// userList prints every user with role, state and last sign-in.
func userList(ctx context.Context, e env, args []string) error {
	a, _, done, err := start(ctx, e, "user", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	list, err := a.db.Users(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATE\tLAST SIGN-IN")
	for _, u := range list {
		last := "never"
		if !u.LastSignInAt.IsZero() {
			last = u.LastSignInAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Role, u.State(), last)
	}
	return tw.Flush()
}

// userRole changes a user's role.
func userRole(ctx context.Context, e env, args []string) error {
	var role *string
	return userChange(ctx, e, "role", args, func(fs *flag.FlagSet) {
		role = fs.String("role", "", "admin or agent (required)")
	}, func(_ *app, s *auth.Service, u store.User) (string, error) {
		u, err := s.SetRole(ctx, store.User{}, u.ID, *role)
		return fmt.Sprintf("%s is now %s", u.Email, articled(u.Role)), err
	})
}

// userDisable disables a user: their sessions end and keys are refused.
func userDisable(ctx context.Context, e env, args []string) error {
	return userChange(ctx, e, "disable", args, nil, func(_ *app, s *auth.Service, u store.User) (string, error) {
		u, err := s.SetDisabled(ctx, store.User{}, u.ID, true)
		return fmt.Sprintf("disabled %s: their sessions ended and their API keys are refused", u.Email), err
	})
}

// userEnable enables a disabled user.
func userEnable(ctx context.Context, e env, args []string) error {
	return userChange(ctx, e, "enable", args, nil, func(_ *app, s *auth.Service, u store.User) (string, error) {
		u, err := s.SetDisabled(ctx, store.User{}, u.ID, false)
		return fmt.Sprintf("enabled %s: they can sign in again", u.Email), err
	})
}

// userReset gives a user a generated password or an invitation link.
func userReset(ctx context.Context, e env, args []string) error {
	var invite *bool
	return userChange(ctx, e, "reset", args, func(fs *flag.FlagSet) {
		invite = fs.Bool("invite", false, "print an invitation link instead of a generated password")
	}, func(a *app, s *auth.Service, u store.User) (string, error) {
		setup := auth.SetupPassword
		if *invite {
			setup = auth.SetupInvite
		}
		creds, err := s.ResetPassword(ctx, store.User{}, u.ID, setup)
		return fmt.Sprintf("reset the password of %s: their sessions ended\n%s", u.Email, credentialsText(a, creds)), err
	})
}

// userChange finds the user of --email and runs change, printing its sentence.
func userChange(ctx context.Context, e env, verb string, args []string, declare func(*flag.FlagSet),
	change func(*app, *auth.Service, store.User) (string, error)) error {
	var email *string
	cmd := "user " + verb
	a, _, done, err := start(ctx, e, "user", args, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "the user's email address (required)")
		if declare != nil {
			declare(fs)
		}
	}, func(*flag.FlagSet) error {
		if *email == "" {
			return fmt.Errorf("%s: --email is required", cmd)
		}
		return nil
	})
	if done {
		return err
	}
	defer a.close()
	u, err := keyOwner(ctx, a, cmd, *email, " (see 'postdesk user list')")
	if err != nil {
		return err
	}
	said, err := change(a, auth.New(a.db, 0), u)
	var v *auth.ValidationError
	if errors.As(err, &v) {
		if v.Field != "" && v.Field != "disabled" {
			return fmt.Errorf("%s: --%s: %s", cmd, v.Field, v.Message)
		}
		return fmt.Errorf("%s: %s", cmd, v.Message)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	fmt.Fprintln(e.stdout, strings.TrimRight(said, "\n"))
	return nil
}

// credentialsText says how a user gets in, shown once: an invitation
// link or a password ("" for neither).
func credentialsText(a *app, c auth.Credentials) string {
	switch {
	case c.InviteToken != "":
		return fmt.Sprintf("invitation link: %s/invite/%s\n(works once, until %s; shown once: send it to them now)\n",
			strings.TrimSuffix(a.cfg.BaseURL.String(), "/"), c.InviteToken, c.InviteExpires.UTC().Format(time.RFC3339))
	case c.Password != "":
		return fmt.Sprintf("password: %s\n(shown once: store it now)\n", c.Password)
	}
	return ""
}

// articled is "an admin" or "an agent".
func articled(role string) string { return "an " + role }
