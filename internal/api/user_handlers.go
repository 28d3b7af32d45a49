package api

import "net/http"

// usersResponse is the list of GET /users.
type usersResponse struct {
	Users []userResponse `json:"users"`
}

// getUsers lists the users tickets can be assigned to (every user who is
// not disabled), for any key: their ids are what "assignee_id" takes.
func (h *handler) getUsers(w http.ResponseWriter, r *http.Request) {
	list, err := h.desk.AssignableUsers(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := usersResponse{Users: make([]userResponse, 0, len(list))}
	for _, u := range list {
		out.Users = append(out.Users, userResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role})
	}
	writeJSON(w, r, http.StatusOK, out)
}
