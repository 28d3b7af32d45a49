package mailtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
)

// writeUsers writes the master user (a new password per start) and the
// password users (kept from an existing instance folder).
func (s *Stack) writeUsers() error {
	s.masterUser, s.masterPass = "mailtest-master", randomHex(16)
	line := s.masterUser + ":{PLAIN}" + s.masterPass + "\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "etc/master-users"), []byte(line), 0o644); err != nil {
		return fmt.Errorf("write master user: %w", err)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.Dir, "etc/users"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read users: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if addr, pass, ok := strings.Cut(sc.Text(), ":{PLAIN}"); ok {
			s.users[addr] = pass
		}
	}
	for addr, pass := range s.opts.PasswordUsers {
		if strings.ContainsAny(addr, ":\n") || strings.Contains(pass, "\n") {
			return fmt.Errorf("password user %q: address or password not allowed in a passwd-file", addr)
		}
		s.users[strings.ToLower(addr)] = pass
	}
	return s.saveUsersLocked()
}

// AddPasswordUser adds a user who logs in with a password (SASL PLAIN or
// LOGIN over IMAP, submission and Postfix submission), or changes its
// password. Dovecot re-reads its passwd-file at most once a second, at a
// lookup, when the file's mtime or size changed: AddPasswordUser therefore
// returns only once the second of the change is over (0.5 s on average).
// Options.PasswordUsers adds users at start without that wait.
func (s *Stack) AddPasswordUser(address, password string) error {
	if strings.ContainsAny(address, ":\n") || strings.Contains(password, "\n") {
		return fmt.Errorf("mailtest: add user %q: address or password not allowed in a passwd-file", address)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	s.users[strings.ToLower(address)] = password
	if err := s.saveUsersLocked(); err != nil {
		return err
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	return nil
}

// saveUsersLocked writes etc/users atomically.
func (s *Stack) saveUsersLocked() error {
	var b bytes.Buffer
	addrs := make([]string, 0, len(s.users))
	for a := range s.users {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", a, s.users[a])
	}
	path := filepath.Join(s.Dir, "etc/users")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("mailtest: write users: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("mailtest: write users: %w", err)
	}
	return nil
}

// Token returns a new access token for account from the stack's identity
// provider (adding the account to it if unknown), for logins with XOAUTH2 or
// OAUTHBEARER. Its scopes are Microsoft's IMAP.AccessAsUser.All and
// SMTP.Send, and offline_access.
func (s *Stack) Token(account string) (string, error) {
	if s.IdP == nil {
		return "", errors.New("mailtest: token: the stack serves no identity provider (Options.IntrospectionURL set)")
	}
	s.usersMu.Lock() // one AddAccount per account: it would replace the account's state
	defer s.usersMu.Unlock()
	known := slices.ContainsFunc(s.IdP.Accounts(), func(a fakeidp.Account) bool {
		return strings.EqualFold(a.Address, account)
	})
	if !known {
		s.IdP.AddAccount(fakeidp.Account{Address: account})
	}
	tok, err := s.IdP.IssueTokens(ClientID, account, tokenScopes...)
	if err != nil {
		return "", fmt.Errorf("mailtest: token for %s: %w", account, err)
	}
	return tok.AccessToken, nil
}

// Logs returns the daemons' logs (Dovecot's, Postfix's, and what they wrote
// on standard output), each under a header line.
func (s *Stack) Logs() string {
	var b strings.Builder
	for _, f := range logFiles {
		content, err := os.ReadFile(filepath.Join(s.Dir, f))
		if err != nil || len(content) == 0 {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", f, bytes.TrimRight(content, "\n"))
	}
	return b.String()
}

var logFiles = []string{"log/dovecot.stdout", "log/dovecot.log", "log/postfix.stdout", "log/postfix.log"}

// logTails is Logs with at most n lines of each file.
func (s *Stack) logTails(n int) string {
	var b strings.Builder
	for _, f := range logFiles {
		if t := s.logTail(f, n); t != "" {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", f, t)
		}
	}
	return b.String()
}

// logTail returns the last n lines of the instance file rel.
func (s *Stack) logTail(rel string, n int) string {
	content, err := os.ReadFile(filepath.Join(s.Dir, rel))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(content), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
