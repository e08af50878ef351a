package assign

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

type cs = []Candidate

// TestUnitGolden pins Unit across releases, processes and replicas: a
// change here reassigns users of running experiments. The values were
// printed once with %v (shortest exact float64 representation).
func TestUnitGolden(t *testing.T) {
	for _, tc := range []struct {
		app, version, user string
		want               float64
	}{
		{"shop", "v1", "user-0", 0.20552409471137684},
		{"shop", "v2", "user-0", 0.3034369717966718},
		{"shop", "v1", "user-1", 0.7721787428784168},
		{"shop", "v2", "user-1", 0.9144778150239068},
		{"shop", "v3", "alice", 0.826759470306601},
		{"backend", "candidate", "alice", 0.4763406827726631},
		{"backend", "baseline", "alice", 0.5284038345616953},
		{"", "", "", 0.673147057001839},
		{"ab", "c", "u", 0.6228172010648505},
		{"a", "bc", "u", 0.42229914600647517},
		{"default/my-app", "v1", "3f8c2a1e-9b7d-4c55-8e2f-0a6b1d2c3e4f", 0.29117181100149575},
		{"app", "version-with-a-rather-long-name-over-eight-bytes", "bob@example.com", 0.9024867542702948},
		{"ünïcødé", "v1", "用户", 0.2940441148929291},
	} {
		if got := Unit(tc.app, tc.version, tc.user); got != tc.want {
			t.Errorf("Unit(%q, %q, %q) = %v, want %v", tc.app, tc.version, tc.user, got, tc.want)
		}
	}
}

// TestHashIsSipHashOfEncoding checks the documented message layout: the
// streamed hash equals SipHash-2-4, under the documented key, of the
// uvarint-length-prefixed strings built in a buffer, including lengths of
// 128 bytes and more whose uvarint takes two bytes.
func TestHashIsSipHashOfEncoding(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range [][3]string{
		{"", "", ""}, {"shop", "v1", "user-0"}, {"ab", "c", "u"}, {"a", "bc", "u"},
		{long, "v1", "u"}, {"app", long[:127], long[:128]}, {long, long, long},
		// Either side of the stack-buffer limit.
		{long[:stackMsg-3*binary.MaxVarintLen64-2], "v", "u"},
		{long[:stackMsg-3*binary.MaxVarintLen64-1], "v", "u"},
	} {
		var msg []byte
		for _, s := range tc {
			msg = binary.AppendUvarint(msg, uint64(len(s)))
			msg = append(msg, s...)
		}
		key := []byte("iter8.tools/abn1")
		want := sipHash24(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:]), msg)
		if got := hash(tc[0], tc[1], tc[2]); got != want {
			t.Errorf("hash(len %d, len %d, len %d) = %#016x, want %#016x", len(tc[0]), len(tc[1]), len(tc[2]), got, want)
		}
		if got := hashStream(tc[0], tc[1], tc[2]); got != want {
			t.Errorf("hashStream(len %d, len %d, len %d) = %#016x, want %#016x", len(tc[0]), len(tc[1]), len(tc[2]), got, want)
		}
	}
	if Unit("ab", "c", "u") == Unit("a", "bc", "u") {
		t.Errorf(`Unit("ab","c","u") == Unit("a","bc","u"): encoding is ambiguous`)
	}
}

func TestUnitInOpenInterval(t *testing.T) {
	// The extremes of the mapping, where rounding could reach 0 or 1.
	for _, tc := range []struct {
		h    uint64
		want float64
	}{
		{0, 0x1p-54},
		{1<<11 - 1, 0x1p-54},
		{1 << 11, 1.5 * 0x1p-53},
		{1 << 63, 0.5}, // 2^52 + 0.5 rounds to even: the offset is lost above 2^52
		{math.MaxUint64 - 1<<11, 1 - 0x1p-52},
		{math.MaxUint64, 1 - 0x1p-53}, // would round to 1 without the pin
	} {
		if got := unitFromHash(tc.h); got != tc.want || !(got > 0 && got < 1) {
			t.Errorf("unitFromHash(%#016x) = %v, want %v inside (0,1)", tc.h, got, tc.want)
		}
	}
	for i := 0; i < 10000; i++ {
		if u := Unit("app", "v", fmt.Sprint("user-", i)); !(u > 0 && u < 1) {
			t.Fatalf("Unit(app, v, user-%d) = %v, not in (0,1)", i, u)
		}
	}
}

// TestPickGolden pins Pick's answers for fixed inputs.
func TestPickGolden(t *testing.T) {
	ten := make(cs, 10)
	for i := range ten {
		ten[i] = Candidate{fmt.Sprint("v", i+1), 10}
	}
	for _, tc := range []struct {
		app, user string
		c         cs
		want      string
	}{
		{"shop", "user-0", cs{{"v1", 50}, {"v2", 50}}, "v2"},
		{"shop", "user-1", cs{{"v1", 50}, {"v2", 50}}, "v2"},
		{"shop", "user-2", cs{{"v1", 50}, {"v2", 50}}, "v2"},
		{"shop", "user-3", cs{{"v1", 75}, {"v2", 25}}, "v2"},
		{"shop", "user-4", cs{{"v1", 75}, {"v2", 25}}, "v1"},
		{"shop", "user-5", cs{{"v1", 95}, {"v2", 5}}, "v1"},
		{"shop", "alice", cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, "v3"},
		{"shop", "bob", cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, "v1"},
		{"shop", "carol", cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, "v2"},
		{"backend", "alice", cs{{"baseline", 1}, {"candidate", 1}}, "baseline"},
		{"backend", "bob", cs{{"baseline", 1}, {"candidate", 1}}, "candidate"},
		{"backend", "dave", cs{{"baseline", 0.5}, {"candidate", 0.25}, {"candidate-2", 0.25}}, "baseline"},
		{"default/my-app", "3f8c2a1e-9b7d-4c55-8e2f-0a6b1d2c3e4f", ten, "v7"},
		{"", "", cs{{"v1", 1}, {"v2", 1}}, "v2"},
	} {
		got, ok := Pick(tc.app, tc.user, tc.c)
		if !ok || got != tc.want {
			t.Errorf("Pick(%q, %q, %v) = %q, %v; want %q, true", tc.app, tc.user, tc.c, got, ok, tc.want)
		}
	}
}

const nUsers = 100000

// users are "user-0" .. "user-99999".
var users = func() []string {
	u := make([]string, nUsers)
	for i := range u {
		u[i] = fmt.Sprint("user-", i)
	}
	return u
}()

// assignAll picks a version for every user.
func assignAll(t *testing.T, app string, c cs) []string {
	t.Helper()
	out := make([]string, len(users))
	for i, u := range users {
		name, ok := Pick(app, u, c)
		if !ok {
			t.Fatalf("Pick(%q, %q, %v): ok = false", app, u, c)
		}
		out[i] = name
	}
	return out
}

// shares counts the fraction of users on each version.
func shares(got []string) map[string]float64 {
	s := map[string]float64{}
	for _, n := range got {
		s[n] += 1 / float64(len(got))
	}
	return s
}

func TestPickProportional(t *testing.T) {
	for _, c := range []cs{
		{{"v1", 75}, {"v2", 25}},
		{{"v1", 95}, {"v2", 5}},
		{{"v1", 50}, {"v2", 25}, {"v3", 25}},
		{{"v1", 3}, {"v2", 1}}, // relative: same as 75/25
	} {
		total := 0.0
		for _, x := range c {
			total += x.Weight
		}
		s := shares(assignAll(t, "shop", c))
		for _, x := range c {
			want := x.Weight / total
			t.Logf("weights %v: %s share %.2f%% (want %.2f%%)", c, x.Name, 100*s[x.Name], 100*want)
			if math.Abs(s[x.Name]-want) > 0.01 {
				t.Errorf("weights %v: %s share = %.2f%%, want %.2f%% ± 1 point", c, x.Name, 100*s[x.Name], 100*want)
			}
		}
	}
}

func TestPickRelativeWeights(t *testing.T) {
	a := cs{{"v1", 75}, {"v2", 25}}
	b := cs{{"v1", 3}, {"v2", 1}}
	for _, u := range users[:10000] {
		x, _ := Pick("shop", u, a)
		y, _ := Pick("shop", u, b)
		if x != y {
			t.Fatalf("Pick(shop, %q): 75/25 gives %q, 3/1 gives %q", u, x, y)
		}
	}
}

// moved compares two assignments of the same users.
type moved struct {
	frac float64        // fraction of users whose version changed
	into map[string]int // destination versions of moved users
	from map[string]int // origin versions of moved users
}

func diff(before, after []string) moved {
	m := moved{into: map[string]int{}, from: map[string]int{}}
	n := 0
	for i := range before {
		if before[i] != after[i] {
			n++
			m.into[after[i]]++
			m.from[before[i]]++
		}
	}
	m.frac = float64(n) / float64(len(before))
	return m
}

func TestMinimalMovementWeightChange(t *testing.T) {
	for _, tc := range []struct {
		before, after cs
		maxMoved      float64
		grew          []string // the only versions users may move into
	}{
		{cs{{"v1", 90}, {"v2", 10}}, cs{{"v1", 80}, {"v2", 20}}, 0.105, []string{"v2"}},
		// 40/20/40 is 50/25/50 relative: only v3 grew.
		{cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, cs{{"v1", 40}, {"v2", 20}, {"v3", 40}}, 0.16, []string{"v3"}},
	} {
		m := diff(assignAll(t, "shop", tc.before), assignAll(t, "shop", tc.after))
		t.Logf("%v -> %v: moved %.2f%% of users, into %v", tc.before, tc.after, 100*m.frac, m.into)
		if m.frac > tc.maxMoved {
			t.Errorf("%v -> %v moved %.2f%% of users, want at most %.1f%%", tc.before, tc.after, 100*m.frac, 100*tc.maxMoved)
		}
		for name, n := range m.into {
			if !contains(tc.grew, name) {
				t.Errorf("%v -> %v moved %d users into %s, whose weight did not grow (want only into %v)", tc.before, tc.after, n, name, tc.grew)
			}
		}
	}
}

func TestMinimalMovementAddVersion(t *testing.T) {
	before := assignAll(t, "shop", cs{{"v1", 50}, {"v2", 50}})
	after := assignAll(t, "shop", cs{{"v1", 50}, {"v2", 50}, {"v3", 25}})
	m := diff(before, after)
	t.Logf("adding v3 at 50/50/25 moved %.2f%% of users, into %v", 100*m.frac, m.into)
	for name, n := range m.into {
		if name != "v3" {
			t.Errorf("adding v3 moved %d users into %s, want moves only into v3", n, name)
		}
	}
	// Users left on v1 and v2 keep the 50:50 ratio.
	s := shares(after)
	ratio := s["v1"] / (s["v1"] + s["v2"])
	t.Logf("after adding v3: v1 %.2f%%, v2 %.2f%%, v3 %.2f%%; v1 of v1+v2 %.2f%%", 100*s["v1"], 100*s["v2"], 100*s["v3"], 100*ratio)
	if math.Abs(ratio-0.5) > 0.01 {
		t.Errorf("after adding v3, v1:v2 = %.2f%% of v1+v2, want 50%% ± 1 point", 100*ratio)
	}
	if math.Abs(s["v3"]-0.2) > 0.01 {
		t.Errorf("after adding v3 at weight 25 of 125, v3 share = %.2f%%, want 20%% ± 1 point", 100*s["v3"])
	}
}

func TestMinimalMovementRemoveVersion(t *testing.T) {
	for _, tc := range []struct {
		before, after cs
		removed       string
	}{
		{cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, cs{{"v1", 50}, {"v2", 25}}, "v3"},
		{cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, cs{{"v1", 50}, {"v3", 25}}, "v2"},
		// Weight 0 is as good as removed.
		{cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}, cs{{"v1", 50}, {"v2", 25}, {"v3", 0}}, "v3"},
	} {
		before := assignAll(t, "shop", tc.before)
		after := assignAll(t, "shop", tc.after)
		m := diff(before, after)
		t.Logf("%v -> %v moved %.2f%% of users, from %v", tc.before, tc.after, 100*m.frac, m.from)
		for i := range before {
			if (before[i] == tc.removed) != (before[i] != after[i]) {
				t.Fatalf("%v -> %v: %s went %s -> %s; want exactly the users of %s to move", tc.before, tc.after, users[i], before[i], after[i], tc.removed)
			}
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestPickUnusableWeights(t *testing.T) {
	bad := []float64{0, -1, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1)}
	for _, w := range bad {
		for _, u := range users[:2000] {
			c := cs{{"bad", w}, {"good", 1e-300}}
			if got, ok := Pick("shop", u, c); !ok || got != "good" {
				t.Fatalf("Pick(shop, %q, %v) = %q, %v; want good, true", u, c, got, ok)
			}
			c = cs{{"good", 1e-300}, {"bad", w}}
			if got, ok := Pick("shop", u, c); !ok || got != "good" {
				t.Fatalf("Pick(shop, %q, %v) = %q, %v; want good, true", u, c, got, ok)
			}
		}
		if got, ok := Pick("shop", "alice", cs{{"bad", w}}); ok {
			t.Errorf("Pick(shop, alice, [bad %v]) = %q, true; want ok = false", w, got)
		}
	}
}

func TestPickNoCandidate(t *testing.T) {
	for _, c := range []cs{nil, {}, {{"v1", 0}, {"v2", -5}, {"v3", math.NaN()}}} {
		if got, ok := Pick("shop", "alice", c); ok || got != "" {
			t.Errorf("Pick(shop, alice, %v) = %q, %v; want \"\", false", c, got, ok)
		}
	}
}

func TestPickSingleCandidate(t *testing.T) {
	for _, w := range []float64{1e-300, 0.001, 1, 100, math.MaxFloat64} {
		for _, u := range users[:1000] {
			if got, ok := Pick("shop", u, cs{{"only", w}}); !ok || got != "only" {
				t.Fatalf("Pick(shop, %q, [only %v]) = %q, %v; want only, true", u, w, got, ok)
			}
		}
	}
}

func TestPickOrderIndependent(t *testing.T) {
	a := cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}
	b := cs{{"v3", 25}, {"v1", 50}, {"v2", 25}}
	for _, u := range users[:10000] {
		x, _ := Pick("shop", u, a)
		y, _ := Pick("shop", u, b)
		if x != y {
			t.Fatalf("Pick(shop, %q): order %v gives %q, order %v gives %q", u, a, x, b, y)
		}
	}
}

func TestPickTieGoesToSmallerName(t *testing.T) {
	// Weight w = -ln(u) gives score -w/ln(u) = 1 exactly, so two versions
	// weighted that way tie and the smaller name must win in either order.
	for _, u := range users[:1000] {
		wa := -math.Log(Unit("shop", "a", u))
		wb := -math.Log(Unit("shop", "b", u))
		for _, c := range []cs{{{"a", wa}, {"b", wb}}, {{"b", wb}, {"a", wa}}} {
			if got, ok := Pick("shop", u, c); !ok || got != "a" {
				t.Fatalf("Pick(shop, %q, %v) with tied scores = %q, %v; want a, true", u, c, got, ok)
			}
		}
	}
}

func TestPickAllocs(t *testing.T) {
	c := cs{{"v1", 50}, {"v2", 25}, {"v3", 25}}
	long := strings.Repeat("long-user-id-", 40)
	for _, user := range []string{"alice", long} {
		if n := testing.AllocsPerRun(1000, func() { Pick("shop", user, c) }); n != 0 {
			t.Errorf("Pick(shop, user of %d bytes, 3 versions) allocates %v times per call, want 0", len(user), n)
		}
	}
}
