package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeGitHub serves the REST calls of a pull request for repository o/r,
// as GitHub documents them, and keeps branches, files and pull requests.
type fakeGitHub struct {
	t        *testing.T
	token    string
	mu       sync.Mutex
	branches map[string]string // name → head commit
	files    map[string]string // branch + ":" + path → content
	pulls    map[string]string // head → base
	calls    []string          // "METHOD path"
	commits  int
}

func newFakeGitHub(t *testing.T, token string) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, token: token, branches: map[string]string{"main": "basesha"}, files: map[string]string{}, pulls: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+f.token || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var body map[string]string
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"message":"Problems parsing JSON"}`, http.StatusBadRequest)
			return
		}
	}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	p := strings.TrimPrefix(r.URL.Path, "/repos/o/r/")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(p, "git/ref/heads/"):
		sha, ok := f.branches[strings.TrimPrefix(p, "git/ref/heads/")]
		if !ok {
			answer(http.StatusNotFound, map[string]string{"message": "Not Found"})
			return
		}
		answer(http.StatusOK, map[string]any{"ref": "refs/heads/x", "object": map[string]string{"sha": sha, "type": "commit"}})
	case r.Method == http.MethodPost && p == "git/refs":
		name := strings.TrimPrefix(body["ref"], "refs/heads/")
		if _, ok := f.branches[name]; ok {
			answer(http.StatusUnprocessableEntity, map[string]string{"message": "Reference already exists"})
			return
		}
		f.branches[name] = body["sha"]
		answer(http.StatusCreated, map[string]any{"ref": body["ref"]})
	case r.Method == http.MethodGet && strings.HasPrefix(p, "contents/"):
		content, ok := f.files[r.URL.Query().Get("ref")+":"+strings.TrimPrefix(p, "contents/")]
		if !ok {
			answer(http.StatusNotFound, map[string]string{"message": "Not Found"})
			return
		}
		// Large, as a real file's answer is: it carries the content.
		answer(http.StatusOK, map[string]string{"sha": blobSHA(content), "content": base64.StdEncoding.EncodeToString([]byte(content + strings.Repeat(" ", 20000)))})
	case r.Method == http.MethodPut && strings.HasPrefix(p, "contents/"):
		key := body["branch"] + ":" + strings.TrimPrefix(p, "contents/")
		old, exists := f.files[key]
		switch {
		case exists && body["sha"] == "":
			answer(http.StatusUnprocessableEntity, map[string]string{"message": `Invalid request. "sha" wasn't supplied.`})
			return
		case exists && body["sha"] != blobSHA(old):
			answer(http.StatusConflict, map[string]string{"message": "does not match"})
			return
		}
		data, err := base64.StdEncoding.DecodeString(body["content"])
		if err != nil || body["message"] == "" {
			answer(http.StatusUnprocessableEntity, map[string]string{"message": "Invalid request."})
			return
		}
		f.files[key] = string(data)
		f.commits++
		answer(map[bool]int{true: http.StatusOK, false: http.StatusCreated}[exists], map[string]any{"content": map[string]string{"path": p}})
	case r.Method == http.MethodPost && p == "pulls":
		if _, ok := f.pulls[body["head"]]; ok {
			answer(http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
				"errors": []map[string]string{{"message": "A pull request already exists for o:" + body["head"] + "."}}})
			return
		}
		if body["title"] == "" || body["base"] == "" {
			answer(http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		f.pulls[body["head"]] = body["base"]
		answer(http.StatusCreated, map[string]any{"number": len(f.pulls), "html_url": "https://github.example/o/r/pull/1", "title": body["title"], "body": body["body"]})
	default:
		answer(http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

func blobSHA(content string) string { return fmt.Sprintf("blob%d", len(content)) }

// TestGitHubPullRequest: the first run makes the branch, commits the file
// and opens the pull request; the next commits to the same branch and
// keeps the open pull request; the token is in no log line.
func TestGitHubPullRequest(t *testing.T) {
	gh, srv := newFakeGitHub(t, "ghs_prtoken")
	task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GH", "dispatch": "pullRequest",
		"base": "main", "path": "charts/app/values.yaml", "content": "winner: {{ .Winner }}\nrevision: {{ .Revision }}\n",
		"apiURL": "`+srv.URL+`"}}]}`)
	var logs strings.Builder
	secrets := map[string]string{"GH": "ghs_prtoken"}
	if err := task.Run(context.Background(), env(sampleResult(), secrets, &logs)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		"GET /repos/o/r/git/ref/heads/main", "POST /repos/o/r/git/refs",
		"GET /repos/o/r/contents/charts/app/values.yaml", "PUT /repos/o/r/contents/charts/app/values.yaml", "POST /repos/o/r/pulls",
	}
	if got := strings.Join(gh.calls, "; "); got != strings.Join(want, "; ") {
		t.Errorf("calls:\n%s\nwant\n%s", got, strings.Join(want, "; "))
	}
	const branch = "iter8/checkout-3"
	if gh.branches[branch] != "basesha" || gh.files[branch+":charts/app/values.yaml"] != "winner: v1\nrevision: 3\n" || gh.pulls[branch] != "main" {
		t.Errorf("branches %v, files %q, pulls %v; want %s from main's head, the rendered file on it, a pull request into main", gh.branches, gh.files, gh.pulls, branch)
	}

	// Again: the branch and the pull request exist; the file is replaced.
	r := sampleResult()
	r.Winner = "v2"
	gh.calls = nil
	if err := task.Run(context.Background(), env(r, secrets, &logs)); err != nil {
		t.Fatalf("Run again: %v", err)
	}
	if gh.files[branch+":charts/app/values.yaml"] != "winner: v2\nrevision: 3\n" || gh.commits != 2 || len(gh.pulls) != 1 {
		t.Errorf("after the second run: files %q, %d commits, %d pull requests; want v2 committed on the same branch, one pull request", gh.files, gh.commits, len(gh.pulls))
	}
	if !strings.Contains(logs.String(), "a pull request from the branch was open") {
		t.Errorf("log does not say the pull request was open:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "ghs_prtoken") {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
}

// TestGitHubPullRequestFailures: a missing base branch, a rendered branch
// name git refuses and a refused token each fail the target, naming what;
// the token is in no error.
func TestGitHubPullRequestFailures(t *testing.T) {
	for _, c := range []struct{ name, token, fields, want string }{
		{"no base", "ghs_prtoken", `"base": "dev"`, "base branch dev: GET " + "SRV/repos/o/r/git/ref/heads/dev: not found (404)"},
		{"bad branch", "ghs_prtoken", `"base": "main", "branch": "x..{{ .Experiment }}"`, `with.targets[0].github.branch: "x..checkout": not a branch name git allows`},
		{"branch is base", "ghs_prtoken", `"base": "checkout", "branch": "{{ .Experiment }}"`, `with.targets[0].github.branch: "checkout" is base`},
		{"bad token", "ghs_other", `"base": "main"`, "status 401: {\"message\":\"Bad credentials\"}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, srv := newFakeGitHub(t, c.token)
			task := mustDecode(t, `{"targets": [{"github": {"repository": "o/r", "tokenFrom": "GH", "dispatch": "pullRequest",
				"path": "values.yaml", "content": "x", `+c.fields+`, "apiURL": "`+srv.URL+`"}}]}`)
			err := task.Run(context.Background(), env(sampleResult(), map[string]string{"GH": "ghs_prtoken"}, nil))
			want := strings.ReplaceAll(c.want, "SRV", srv.URL)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "ghs_prtoken") {
				t.Errorf("Run: %v; want an error containing %q, without the token", err, want)
			}
		})
	}
}
