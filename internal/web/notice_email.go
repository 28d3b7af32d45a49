package web

import (
	"fmt"

	"github.com/postdesk/postdesk/internal/store"
)

// noticeEmailWords says what became of a notice's email to the admins
// (notifications), for Admin → Emails; "" when there is nothing to say (a
// notice from before notices were emailed, or of a kind nobody is emailed
// about). address names a mailbox by id ("" when unknown).
func noticeEmailWords(e store.NoticeEmail, address func(int64) string) (words string, warn bool) {
	switch e.State {
	case store.EmailPending:
		return "Being emailed to the admins.", false
	case store.EmailQueued:
		admins := "1 admin"
		if e.Count != 1 {
			admins = fmt.Sprintf("%d admins", e.Count)
		}
		if a := address(e.MailboxID); a != "" {
			return fmt.Sprintf("Emailed to %s through %s.", admins, a), false
		}
		return fmt.Sprintf("Emailed to %s.", admins), false
	case store.EmailRepeat:
		return "Not emailed again: the admins were emailed about this a moment ago.", false
	case store.EmailNoMailbox:
		return "Not emailed: no mailbox could send it (none is connected with working SMTP settings). It is shown here only.", true
	case store.EmailNoAdmin:
		return "Not emailed: no active admin has an address to send it to. It is shown here only.", true
	}
	return "", false
}
