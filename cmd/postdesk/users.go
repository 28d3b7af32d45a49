package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

func runUser(ctx context.Context, e env, args []string) error {
	return dispatch(ctx, e, "user", args, verb{"add", userAdd}, verb{"list", userList}, verb{"role", userRole},
		verb{"disable", userDisable}, verb{"enable", userEnable}, verb{"reset", userReset},
		verb{"lockouts", userLockouts}, verb{"unlock", userUnlock})
}

func userAdd(ctx context.Context, e env, args []string) error {
	var email, name, role *string
	var invite *bool
	var password string
	a, _, done, err := startNew(ctx, e, "user", args, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "the user's email address (required)")
		name = fs.String("name", "", "the user's display name")
		role = fs.String("role", store.RoleAgent, "admin or agent")
		invite = fs.Bool("invite", false, "print an invitation link (single use, 7 days) with which they choose their password, instead of a password")
	}, func(*flag.FlagSet) error {
		if *email == "" {
			return errors.New("user add: --email is required")
		}
		if *role != store.RoleAdmin && *role != store.RoleAgent {
			return fmt.Errorf("user add: --role must be admin or agent, not %q", *role)
		}
		if *invite {
			return nil
		}
		var err error
		password, err = readUserPassword(e)
		return err
	})
	if done {
		return err
	}
	defer a.close()
	setup := auth.SetupPassword
	if *invite {
		setup = auth.SetupInvite
	}
	u, creds, err := auth.New(a.db, 0).AddUser(ctx, store.User{}, auth.NewUser{Email: *email, Name: *name, Role: *role, Setup: setup, Password: password})
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(e.stdout, "added %s %s (id %d)\n", u.Role, u.Email, u.ID)
	if password != "" {
		creds.Password = "" // theirs, from stdin: not ours to print
	}
	fmt.Fprint(e.stdout, credentialsText(a, creds))
	return nil
}

// readPassword reads a password from stdin when stdin is not a terminal;
// empty means "generate one" (user add) or "none given" (mailbox add).
// It decides no length: a mail server decides its mailboxes' passwords,
// and user add checks its own (readUserPassword).
func readPassword(e env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok {
		if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice != 0 {
			return "", nil
		}
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", nil
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readUserPassword is readPassword for an agent's own password, which
// must be at least 8 characters.
func readUserPassword(e env) (string, error) {
	pw, err := readPassword(e)
	if err == nil && pw != "" && len(pw) < 8 {
		return "", errors.New("user add: the password from stdin must be at least 8 characters")
	}
	return pw, err
}

// userLockouts lists the accounts and addresses with failed sign-ins.
func userLockouts(ctx context.Context, e env, args []string) error {
	a, _, done, err := start(ctx, e, "user", args, nil, nil)
	if done {
		return err
	}
	defer a.close()
	ls, err := auth.New(a.db, 0).Lockouts(ctx)
	if err != nil {
		return fmt.Errorf("user lockouts: %w", err)
	}
	if len(ls) == 0 {
		fmt.Fprintln(e.stdout, "no failed sign-ins")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tEMAIL OR IP\tFAILURES\tLAST FAILURE\tNEXT ATTEMPT")
	for _, l := range ls {
		next := "now"
		if l.Wait > 0 {
			next = "in " + l.Wait.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", l.Kind, l.Subject, l.Failures, l.LastFailedAt.UTC().Format(time.RFC3339), next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "(clear one with 'postdesk user unlock --email E' or '--ip A')")
	return nil
}

// userUnlock forgets the failed sign-ins of an account or an address.
func userUnlock(ctx context.Context, e env, args []string) error {
	var email, ip *string
	a, _, done, err := start(ctx, e, "user", args, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "clear the failed sign-ins of this email")
		ip = fs.String("ip", "", "clear the failed sign-ins from this IP address")
	}, func(*flag.FlagSet) error {
		if (*email == "") == (*ip == "") {
			return errors.New("user unlock: give --email or --ip (one of them)")
		}
		if *ip != "" {
			addr, err := netip.ParseAddr(*ip)
			if err != nil {
				return fmt.Errorf("user unlock: --ip %q is not an IP address", *ip)
			}
			*ip = addr.Unmap().String()
		}
		return nil
	})
	if done {
		return err
	}
	defer a.close()
	kind, subject := store.ThrottleAccount, *email
	if *ip != "" {
		kind, subject = store.ThrottleIP, *ip
	}
	found, err := auth.New(a.db, 0).Unlock(ctx, kind, subject)
	if err != nil {
		return fmt.Errorf("user unlock: %w", err)
	}
	if !found {
		fmt.Fprintf(e.stdout, "no failed sign-ins recorded for %s\n", subject)
		return nil
	}
	fmt.Fprintf(e.stdout, "cleared the failed sign-ins of %s: it may sign in now\n", subject)
	return nil
}
