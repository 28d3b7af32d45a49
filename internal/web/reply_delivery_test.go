package web

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

func TestDescribeDelivery(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)
	agent := deliveryFacts{MailboxID: 3, MailboxAddress: "support@example.com"}
	admin := agent
	admin.Admin = true
	for _, c := range []struct {
		name        string
		d           store.Delivery
		f           deliveryFacts
		label, tone string
		want        []string // in Sentence + " | " + Advice
		link        string
		retry, mark bool
	}{
		{"queued", store.Delivery{State: store.DeliveryQueued}, agent, "Queued", "busy",
			[]string{"Queued: sending in a moment."}, "", false, false},
		{"queued after a temporary refusal", store.Delivery{State: store.DeliveryQueued, Attempts: 2, LastError: "451 4.3.2 try later", ErrorKind: "throttled", NextAttemptAt: at},
			agent, "Retrying", "warn", []string{"Not sent yet: 451 4.3.2 try later", "will retry at 4\u00a0Mar\u00a02026, 09:30\u00a0UTC"}, "", false, false},
		{"released after a sign-in", store.Delivery{State: store.DeliveryQueued, ErrorKind: store.Released}, agent, "Queued", "busy",
			[]string{"its new mail is fetched first"}, "", false, false},
		{"stale", store.Delivery{State: store.DeliveryFailed, ErrorKind: "stale", LastError: "jane@customer.test wrote again while this reply was held (their email of 1 Dec 2026 09:00 UTC)"},
			agent, "Not sent", "danger", []string{"wrote again while this reply was held", "Read the customer's newer email first"}, "", true, false},
		{"bounced", store.Delivery{State: store.DeliveryFailed, ErrorKind: "bounced", LastError: store.BouncedWords + "jane@customer.test (5.1.1 mailbox unavailable)"},
			agent, "Bounced", "danger", []string{"Sent, but it came back undelivered: jane@customer.test (5.1.1 mailbox unavailable)", "Check the address"}, "", true, false},
		{"sending", store.Delivery{State: store.DeliverySending, Attempts: 1}, agent, "Sending", "busy", []string{"Sending now."}, "", false, false},
		{"sent", store.Delivery{State: store.DeliverySent, SentAt: at}, agent, "Sent", "ok", []string{"Sent 4\u00a0Mar\u00a02026, 09:30\u00a0UTC."}, "", false, false},
		{"held, agent", store.Delivery{State: store.DeliveryHeld}, agent, "Held", "warn",
			[]string{"Held: support@example.com needs reauthentication; it will be sent when an admin signs in again."}, "", false, false},
		{"held, admin", store.Delivery{State: store.DeliveryHeld}, admin, "Held", "warn", []string{"needs reauthentication"}, "/admin/emails#mailbox-3", false, false},
		{"auth disabled", store.Delivery{State: store.DeliveryFailed, LastError: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", ErrorKind: "auth_disabled"},
			agent, "Not sent", "danger", []string{"Not sent: 535 5.7.139", "enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps"}, "", true, false},
		{"send as denied", store.Delivery{State: store.DeliveryFailed, LastError: "550 5.7.60 SendAsDenied", ErrorKind: "send_as_denied"},
			agent, "Not sent", "danger", []string{"The signed-in account may not send as support@example.com: grant it Send As permission for this address"}, "", true, false},
		{"recipient unknown", store.Delivery{State: store.DeliveryFailed, LastError: "550 5.1.1 no such user", ErrorKind: "recipient_unknown"},
			agent, "Not sent", "danger", []string{"The recipient address does not exist: check it and send again."}, "", true, false},
		{"auth failed, admin", store.Delivery{State: store.DeliveryFailed, LastError: "535 5.7.3 Authentication unsuccessful", ErrorKind: "auth_failed"},
			admin, "Not sent", "danger", []string{"needs reauthentication"}, "/admin/emails#mailbox-3", true, false},
		{"config, admin", store.Delivery{State: store.DeliveryFailed, LastError: "dial tcp: connection refused", ErrorKind: "config"},
			admin, "Not sent", "danger", []string{"SMTP settings do not work"}, "/admin/emails/3/edit", true, false},
		{"permanent", store.Delivery{State: store.DeliveryFailed, LastError: "554 5.6.0 message rejected", ErrorKind: "permanent"},
			agent, "Not sent", "danger", []string{"Not sent: 554 5.6.0 message rejected", "send again"}, "", true, false},
		{"unknown", store.Delivery{State: store.DeliveryUnknown, ErrorKind: "outcome_unknown"}, agent, "Unknown", "danger",
			[]string{"Postdesk stopped while sending this reply and cannot tell whether the server accepted it: check with the customer, then Send again or Mark as sent."}, "", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := describeDelivery(c.d, c.f)
			if v.Label != c.label || v.Tone != c.tone || v.Retry != c.retry || v.MarkSent != c.mark || v.LinkURL != c.link {
				t.Errorf("got label %q tone %q retry %v mark %v link %q, want %q %q %v %v %q", v.Label, v.Tone, v.Retry, v.MarkSent, v.LinkURL, c.label, c.tone, c.retry, c.mark, c.link)
			}
			text := v.Sentence + " | " + v.Advice
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("text %q lacks %q", text, w)
				}
			}
			if v.LinkURL != "" && v.LinkText == "" {
				t.Error("a link without words")
			}
		})
	}
}

func TestSplitAddresses(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"":                                      nil,
		" , ; ":                                 nil,
		"a@x.test":                              {"a@x.test"},
		"a@x.test, b@y.test;c@z.test\nd@w.test": {"a@x.test", "b@y.test", "c@z.test", "d@w.test"},
		`"Smith, Bob" <bob@x.test>, Ann <a@x.test>`: {`"Smith, Bob" <bob@x.test>`, "Ann <a@x.test>"},
		"<odd,but@x.test>":                          {"<odd,but@x.test>"},
	} {
		if got := splitAddresses(in); !slices.Equal(got, want) {
			t.Errorf("splitAddresses(%q) = %q, want %q", in, got, want)
		}
	}
	if got := replyLimit(20 << 20); got != "20 MB" {
		t.Errorf("replyLimit = %q", got)
	}
}
