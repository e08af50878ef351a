package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/iter8-tools/iter8/pkg/redact"
)

// pullRequest commits the target's file to a branch and opens a pull
// request from it into the base branch, through GitHub's REST API
// (https://docs.github.com/en/rest/git/refs, /rest/repos/contents and
// /rest/pulls/pulls):
//
//  1. GET  git/ref/heads/{base}: the base's head commit;
//  2. POST git/refs: the branch from it (one that exists is used as it is);
//  3. GET  contents/{path}?ref={branch}: the file's blob SHA, if it exists;
//  4. PUT  contents/{path}: the new content, committed to the branch;
//  5. POST pulls: the pull request (one already open for the branch stays,
//     now with the new commit).
//
// Running it again (a later loop or revision with the same branch) adds a
// commit to the branch and so to the open pull request.
func (s *sender) pullRequest(ctx context.Context, i int, tg *target) error {
	g := tg.github
	render := func(t *tmpl, def string) (string, error) {
		if t == nil {
			return def, nil
		}
		return t.render(s.summary, s.secret)
	}
	name := fmt.Sprintf("iter8 %s, revision %d", s.summary.Experiment, s.summary.Revision)
	branch, err := render(g.branch, fmt.Sprintf("iter8/%s-%d", s.summary.Experiment, s.summary.Revision))
	if err != nil {
		return err
	}
	branchField := "branch"
	if g.branch != nil {
		branchField = g.branch.name
	}
	if why := checkBranch(branch); why != "" {
		return fmt.Errorf("%s: %q: %s", branchField, branch, why)
	}
	if branch == g.base {
		return fmt.Errorf("%s: %q is base: the file would be committed to base unreviewed", branchField, branch)
	}
	content, err := render(g.content, "")
	if err != nil {
		return err
	}
	message, err := render(g.message, name)
	if err != nil {
		return err
	}
	title, err := render(g.title, name)
	if err != nil {
		return err
	}
	state, verdict := statusVerdict(s.summary)
	body, err := render(g.body, fmt.Sprintf("%s (%s). Opened by Iter8's notify task.", verdict, state))
	if err != nil {
		return err
	}
	repo := tg.url

	var ref struct {
		Object struct {
			SHA string `json:"sha"`
		} `json:"object"`
	}
	if _, err := s.githubCall(ctx, g, http.MethodGet, repo.JoinPath("git", "ref", "heads", g.base), nil, &ref, nil); err != nil {
		return fmt.Errorf("base branch %s: %w", g.base, err)
	}
	exists, err := s.githubCall(ctx, g, http.MethodPost, repo.JoinPath("git", "refs"),
		map[string]string{"ref": "refs/heads/" + branch, "sha": ref.Object.SHA}, nil, refExists)
	if err != nil {
		return fmt.Errorf("create branch %s: %w", branch, err)
	}
	if exists {
		s.log.Info("the pull request's branch exists; committing to it", "target", i, "branch", s.red.String(branch))
	}

	contents := repo.JoinPath("contents", g.path)
	var file struct {
		SHA string `json:"sha"`
	}
	atBranch := *contents
	atBranch.RawQuery = url.Values{"ref": {branch}}.Encode()
	if _, err := s.githubCall(ctx, g, http.MethodGet, &atBranch, nil, &file, nil); err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("read %s on %s: %w", g.path, branch, err)
	}
	put := map[string]string{"message": message, "content": base64.StdEncoding.EncodeToString([]byte(content)), "branch": branch}
	if file.SHA != "" {
		put["sha"] = file.SHA
	}
	if _, err := s.githubCall(ctx, g, http.MethodPut, contents, put, nil, nil); err != nil {
		return fmt.Errorf("commit %s to %s: %w", g.path, branch, err)
	}

	var pr struct {
		Number  int    `json:"number"`
		HTMLURL string `json:"html_url"`
	}
	exists, err = s.githubCall(ctx, g, http.MethodPost, repo.JoinPath("pulls"),
		map[string]string{"title": title, "head": branch, "base": g.base, "body": body}, &pr, pullExists)
	if err != nil {
		return fmt.Errorf("open a pull request from %s into %s: %w", branch, g.base, err)
	}
	if exists {
		s.log.Info("notified: a pull request from the branch was open; it has the new commit", "target", i, "kind", tg.kind, "branch", s.red.String(branch))
		return nil
	}
	s.log.Info("notified: pull request opened", "target", i, "kind", tg.kind, "pull", pr.Number, "url", s.red.String(pr.HTMLURL))
	return nil
}

// errNotFound is GitHub's 404.
var errNotFound = errors.New("not found (404)")

// maxAPIRead bounds an answer of GitHub's REST API that is decoded (a
// file's contents come with it).
const maxAPIRead = 4 << 20

// refExists tells whether a 422 answer to creating a ref says that it
// exists.
func refExists(data []byte) bool {
	var e struct{ Message string }
	return json.Unmarshal(data, &e) == nil && e.Message == "Reference already exists"
}

// pullExists tells whether a 422 answer to opening a pull request says
// that one is open for the branch.
func pullExists(data []byte) bool {
	var e struct{ Errors []struct{ Message string } }
	if json.Unmarshal(data, &e) != nil {
		return false
	}
	for _, x := range e.Errors {
		if strings.HasPrefix(x.Message, "A pull request already exists") {
			return true
		}
	}
	return false
}

// githubCall sends one request of GitHub's REST API with the target's
// token, body (when not nil) as JSON, and decodes a 2xx answer into out
// (when not nil). A 422 that exists (when not nil) recognises as "the
// object is there already" is exists, not an error; a 404 wraps
// errNotFound; any other non-2xx status is an error with an excerpt of
// the answer.
func (s *sender) githubCall(ctx context.Context, g *githubTarget, method string, u *url.URL, body, out any, exists func([]byte) bool) (bool, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return false, err
		}
		r = bytes.NewReader(b)
	}
	display := method + " " + displayURL(u)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return false, fmt.Errorf("%s: %w", display, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+s.secrets[g.tokenFrom])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if err = redact.WithoutURL(err); os.IsTimeout(err) && ctx.Err() == nil {
			return false, fmt.Errorf("%s: no response within %v (timeout)", display, s.task.Timeout)
		}
		return false, fmt.Errorf("%s: %w", display, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAPIRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusUnprocessableEntity && exists != nil && exists(data):
		return true, nil
	case resp.StatusCode == http.StatusNotFound:
		return false, fmt.Errorf("%s: %w: %s", display, errNotFound, s.red.Excerpt(data))
	case resp.StatusCode/100 != 2:
		return false, fmt.Errorf("%s: status %d: %s", display, resp.StatusCode, s.red.Excerpt(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("%s: the answer is not the JSON GitHub documents: %s", display, strings.TrimSpace(s.red.Excerpt(data)))
		}
	}
	return false, nil
}
