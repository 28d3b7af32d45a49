package api

import "net/http"

// userResponse is a user as the API shows it.
type userResponse struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// getMe answers the user the request's API key belongs to.
func (h *handler) getMe(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	writeJSON(w, r, http.StatusOK, userResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role})
}
