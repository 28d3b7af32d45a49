package web

import (
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
	// HasServer: the mailbox has server settings (it can send, save
	// copies and be tested); a mailbox made by an import has none.
	HasServer bool
	// SaveSent: append a copy of each sent reply to the Sent folder;
	// SaveSentHint says what the default is for this mailbox and why.
	SaveSent     bool
	SaveSentHint string
	AckEnabled   bool
	AckTemplate  string

	Errors map[string]string // by field: "imap_host", "password", "" (the form)
	Tested string            // a successful Test connection, in words
	Checks []checkView       // the last Test connection, server by server
}

// checkView is one server's result of Test connection.
type checkView struct {
	Server, Addr, Message string
	OK                    bool
	// FieldID is the input the failure is also shown beside ("" when
	// the message is only here).
	FieldID string
}

// formFields are the form's fields that desk can name in an error; an
// error about another field is shown above the form.
var formFields = map[string]bool{"address": true, "name": true, "imap_host": true, "imap_port": true, "imap_security": true,
	"smtp_host": true, "smtp_port": true, "smtp_security": true, "username": true, "password": true, "folders": true,
	"after_processing": true, "move_to": true, "initial_days": true, "max_age_days": true, "signature": true,
	"save_sent": true, "ack_enabled": true, "ack_template": true}

// serverFields are the form's fields shown only for a password mailbox.
var serverFields = map[string]bool{"imap_host": true, "imap_port": true, "imap_security": true, "smtp_host": true, "smtp_port": true,
	"smtp_security": true, "username": true, "password": true}

// fieldLabels name the fields a connection test can point at.
var fieldLabels = map[string]string{"imap_host": "IMAP host", "imap_port": "IMAP port", "imap_security": "IMAP security",
	"smtp_host": "SMTP host", "smtp_port": "SMTP port", "smtp_security": "SMTP security", "password": "Password",
	"folders": "Folders to fetch", "move_to": "Folder to move it to"}

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
	f.SaveSent = r.PostFormValue("save_sent") == "1"
	f.AckEnabled = r.PostFormValue("ack_enabled") == "1"
	f.AckTemplate = strings.ReplaceAll(r.PostFormValue("ack_template"), "\r\n", "\n")
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
	if f.HasServer {
		saveSent := f.SaveSent
		spec.SaveSent = &saveSent
	}
	spec.AckEnabled, spec.AckTemplate = f.AckEnabled, f.AckTemplate
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
	f.HasServer = spec.Auth != ""
	f.SaveSent = spec.SaveSent != nil && *spec.SaveSent
	f.AckEnabled, f.AckTemplate = spec.AckEnabled, spec.AckTemplate
	if f.AckTemplate == "" {
		f.AckTemplate = desk.DefaultAckTemplate
	}
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
	all := desk.FieldErrors(err)
	if len(all) == 0 {
		return false
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	for _, v := range all {
		if at := f.shownAt(v.Field); f.Errors[at] == "" {
			f.Errors[at] = sentence(v.Message)
		}
	}
	return true
}

// shownAt is the field an error about field is shown beside: "" (above
// the form) for a field the form does not show.
func (f *mailboxForm) shownAt(field string) string {
	if !formFields[field] || (!f.Password && serverFields[field]) || (!f.HasServer && field == "save_sent") {
		return ""
	}
	return field
}

// FieldLabelOf names the input of id ("f-smtp_port") for a link to it.
func (f mailboxForm) FieldLabelOf(id string) string {
	field := strings.TrimPrefix(id, "f-")
	return cmpOr(fieldLabels[field], field)
}

// tested shows a connection test's report: each server's result, and each
// failure beside its field too.
func (f *mailboxForm) tested(rep desk.ConnectionReport) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	for _, c := range rep.Checks {
		cv := checkView{Server: c.Server, Addr: c.Addr, Message: c.Message, OK: c.OK}
		if field := f.shownAt(c.Field); !c.OK && field != "" {
			if _, taken := f.Errors[field]; !taken {
				f.Errors[field] = sentence(c.Message)
			}
			cv.FieldID = "f-" + field
		}
		f.Checks = append(f.Checks, cv)
	}
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
