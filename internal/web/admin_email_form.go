package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
)

// mailboxForm is the form that adds a password mailbox or edits any
// mailbox's settings (admin_email_form.html). Its fields are text as typed;
// Errors holds desk's sentences by desk's field names, shown beside them.
type mailboxForm struct {
	page
	ID       int64  // 0: adding a password mailbox
	Address  string // read-only when editing
	Name     string
	Provider string // for people: "Password (IMAP)", "Microsoft"
	// Password: a password mailbox (server fields and password shown).
	Password bool

	IMAPHost, IMAPPort, IMAPSecurity string
	SMTPHost, SMTPPort, SMTPSecurity string
	Username                         string
	Folders                          string // one per line
	AfterProcessing, MoveTo          string
	InitialDays, MaxAgeDays          string
	Signature                        string

	Errors map[string]string // by field: "imap_host", "password", "" (the form)
	Tested string            // a successful Test connection, in words
}

// formFields are the form's fields that desk can name in an error; an
// error about another field is shown above the form.
var formFields = map[string]bool{"address": true, "name": true, "imap_host": true, "imap_port": true, "imap_security": true,
	"smtp_host": true, "smtp_port": true, "smtp_security": true, "username": true, "password": true, "folders": true,
	"after_processing": true, "move_to": true, "initial_days": true, "max_age_days": true, "signature": true}

// readMailboxForm reads the posted fields into f.
func readMailboxForm(r *http.Request, f *mailboxForm) {
	v := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	if f.ID == 0 {
		f.Address = v("address")
	}
	f.Name = v("name")
	if f.Password {
		f.IMAPHost, f.IMAPPort, f.IMAPSecurity = v("imap_host"), v("imap_port"), v("imap_security")
		f.SMTPHost, f.SMTPPort, f.SMTPSecurity = v("smtp_host"), v("smtp_port"), v("smtp_security")
		f.Username = v("username")
	}
	f.Folders, f.AfterProcessing, f.MoveTo = r.PostFormValue("folders"), v("after_processing"), v("move_to")
	f.InitialDays, f.MaxAgeDays = v("initial_days"), v("max_age_days")
	f.Signature = strings.ReplaceAll(r.PostFormValue("signature"), "\r\n", "\n")
}

// applyTo puts the form's values into spec; a field that is not a number
// where one is needed is an error beside it.
func (f *mailboxForm) applyTo(spec *desk.MailboxSpec, password string) bool {
	f.Errors = map[string]string{}
	spec.Name, spec.Signature = f.Name, strings.TrimRight(f.Signature, " \n")
	if f.ID == 0 {
		spec.Address, spec.Auth = f.Address, "password"
	}
	if f.Password {
		spec.IMAPHost, spec.IMAPSecurity, spec.Username = f.IMAPHost, f.IMAPSecurity, f.Username
		spec.SMTPHost, spec.SMTPSecurity = f.SMTPHost, f.SMTPSecurity
		spec.IMAPPort = f.port("imap_port", f.IMAPPort)
		spec.SMTPPort = f.port("smtp_port", f.SMTPPort)
		spec.Password = password
	}
	spec.Folders = nil
	// One per line: IMAP folder names may hold commas.
	for _, line := range strings.Split(f.Folders, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			spec.Folders = append(spec.Folders, line)
		}
	}
	spec.AfterProcessing, spec.MoveTo = f.AfterProcessing, f.MoveTo
	var err error
	if spec.InitialDays, err = desk.ParseDays(f.InitialDays); err != nil {
		f.Errors["initial_days"] = "Enter a whole number of days (0: only new mail)."
	}
	if spec.MaxAgeDays, err = desk.ParseDays(f.MaxAgeDays); err != nil {
		f.Errors["max_age_days"] = "Enter a whole number of days."
	}
	return len(f.Errors) == 0
}

func (f *mailboxForm) port(field, text string) int {
	if text == "" {
		return 0
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		f.Errors[field] = "Enter a port number, like 993."
	}
	return n
}

// fromSpec fills the form from a mailbox's settings.
func (f *mailboxForm) fromSpec(spec desk.MailboxSpec) {
	f.Address, f.Name, f.Signature = spec.Address, spec.Name, spec.Signature
	f.Password = spec.Auth == "password"
	f.IMAPHost, f.IMAPSecurity, f.Username = spec.IMAPHost, spec.IMAPSecurity, spec.Username
	f.SMTPHost, f.SMTPSecurity = spec.SMTPHost, spec.SMTPSecurity
	if spec.IMAPPort != 0 {
		f.IMAPPort = strconv.Itoa(spec.IMAPPort)
	}
	if spec.SMTPPort != 0 {
		f.SMTPPort = strconv.Itoa(spec.SMTPPort)
	}
	f.Folders = strings.Join(spec.Folders, "\n")
	f.AfterProcessing, f.MoveTo = spec.AfterProcessing, spec.MoveTo
	if spec.InitialDays != nil {
		f.InitialDays = strconv.Itoa(*spec.InitialDays)
	}
	if spec.MaxAgeDays != nil {
		f.MaxAgeDays = strconv.Itoa(*spec.MaxAgeDays)
	}
}

// refused puts desk's refusal beside its field; it reports false for an
// error that is not the admin's to fix (the caller answers 500).
func (f *mailboxForm) refused(err error) bool {
	var v *desk.ValidationError
	if !errors.As(err, &v) {
		return false
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	field := v.Field
	if !formFields[field] || (!f.Password && strings.HasPrefix(field, "imap_")) {
		field = ""
	}
	f.Errors[field] = sentence(v.Message)
	return true
}

// sentence starts s with a capital letter and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// formField is one labelled input of the mailbox form with its error.
type formField struct {
	Name, Label, Value, Type, Placeholder, Error string
}

// fieldOf is a template function: the field name of f with its error.
func fieldOf(f mailboxForm, name, label, value, typ, placeholder string) formField {
	return formField{Name: name, Label: label, Value: value, Type: typ, Placeholder: placeholder, Error: f.Errors[name]}
}
