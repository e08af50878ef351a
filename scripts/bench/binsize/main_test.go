package main

import "testing"

func TestSymbolPackage(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		// functions and methods
		{"runtime.mallocgc", "runtime"},
		{"main.main", "main"},
		{"net/http.(*Client).Do", "net/http"},
		{"github.com/spf13/cobra.(*Command).Execute", "github.com/spf13/cobra"},
		{"github.com/spf13/cobra.Command.Name", "github.com/spf13/cobra"},
		{"k8s.io/api/core/v1.init", "k8s.io/api/core/v1"},
		{"k8s.io/api/core/v1.init.0", "k8s.io/api/core/v1"},
		{"go.etcd.io/bbolt.(*Bucket).CreateBucket.func1", "go.etcd.io/bbolt"},
		{"github.com/cloudflare/circl/dh/x448.ladderStepAmd64.abi0", "github.com/cloudflare/circl/dh/x448"},
		{"github.com/foo/bar.(*T).M-fm", "github.com/foo/bar"},
		// dots in the last element are escaped
		{"gopkg.in/evanphx/json-patch%2ev4.(*Operation).From", "gopkg.in/evanphx/json-patch.v4"},
		{"crypto/internal/entropy/v1%2e0%2e0.SHA384", "crypto/internal/entropy/v1.0.0"},
		// generics: the package of the outermost name
		{"k8s.io/utils/ptr.To[go.shape.string]", "k8s.io/utils/ptr"},
		{"slices.SortFunc[go.shape.[]k8s.io/api/core/v1.Pod,go.shape.func(k8s.io/api/core/v1.Pod, k8s.io/api/core/v1.Pod) int]", "slices"},
		{"sigs.k8s.io/x/cache.(*Cache[go.shape.string,go.shape.*uint8]).Get", "sigs.k8s.io/x/cache"},
		{"sigs.k8s.io/x/cache.Cache[go.shape.string].Get.func2", "sigs.k8s.io/x/cache"},
		{"slices..dict.SortFunc[[]string,func(string, string) int]", "slices"},
		// data
		{"sigs.k8s.io/kustomize/kyaml/openapi/kubernetesapi/v1_21_2..gobytes.1", "sigs.k8s.io/kustomize/kyaml/openapi/kubernetesapi/v1_21_2"},
		{"github.com/mattn/go-runewidth.strictWidthLUT", "github.com/mattn/go-runewidth"},
		// types, equality and hash functions
		{"type:*github.com/spf13/cobra.Command", "github.com/spf13/cobra"},
		{"type:github.com/spf13/cobra.Command", "github.com/spf13/cobra"},
		{"type:.eq.[10]go.opentelemetry.io/otel/attribute.KeyValue", "go.opentelemetry.io/otel/attribute"},
		{"type:.eq.[]*k8s.io/api/core/v1.Pod", "k8s.io/api/core/v1"},
		{"type:.hash.k8s.io/apimachinery/pkg/runtime/schema.GroupVersionKind", "k8s.io/apimachinery/pkg/runtime/schema"},
		{"type:noalg.*chan k8s.io/client-go/tools/cache.Delta", "k8s.io/client-go/tools/cache"},
		{"type:.eq.[10]interface {}", ""},
		{"type:.eq.[10]string", ""},
		{"type:map[string]k8s.io/api/core/v1.Pod", ""},
		{"type:noalg.struct { F uintptr; X0 *int }", ""},
		// itabs: the concrete type
		{"go:itab.*archive/tar.Reader,io.Reader", "archive/tar"},
		{"go:itab.*gopkg.in/evanphx/json-patch%2ev4.partialDoc,gopkg.in/evanphx/json-patch%2ev4.container", "gopkg.in/evanphx/json-patch.v4"},
		{"go:itab.k8s.io/apimachinery/pkg/util/sets.Empty,fmt.Stringer", "k8s.io/apimachinery/pkg/util/sets"},
		{"go:itab.*k8s.io/x/y.T[go.shape.int,string],io.Reader", "k8s.io/x/y"},
		// no package
		{"go:string.*", ""},
		{"go:func.*", ""},
		{"go:buildinfo", ""},
		{"go:struct { encoding.TextAppender }.AppendText", ""},
		{"go:(*struct { sync.Mutex; m map[string]int }).Lock", ""},
		{"$f64.3ff0000000000000", ""},
		{"runtime.gcbits.0102", ""},
		{"runtime.findfunctab", ""},
		{"runtime.typelink", ""},
		{"_rt0_amd64_linux", ""},
		{"type:*", ""},
		{"", ""},
	} {
		if got := symbolPackage(tc.name); got != tc.want {
			t.Errorf("symbolPackage(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestModuleOf(t *testing.T) {
	const mainPath = "github.com/iter8-tools/iter8"
	idx := newModuleIndex([]module{
		{mainPath, "(main module)"},
		{"google.golang.org/grpc", "v1.83.2"},
		{"google.golang.org/grpc/security/advancedtls", "v1.0.0"},
		{"k8s.io/api", "v0.37.2"},
		{"k8s.io/apimachinery", "v0.37.2"},
		{"helm.sh/helm/v3", "v3.22.0"},
		{"gopkg.in/yaml.v3", "v3.0.1"},
		{"go.yaml.in/yaml/v3", "v3.0.4"},
		{"golang.org/x/net", "v0.58.0"},
	})
	for _, tc := range []struct{ pkg, want string }{
		{"", ""},
		{"main", mainPath},
		{mainPath, mainPath},
		{mainPath + "/pkg/action", mainPath},
		{"google.golang.org/grpc", "google.golang.org/grpc"},
		{"google.golang.org/grpc/internal/transport", "google.golang.org/grpc"},
		// longest prefix wins
		{"google.golang.org/grpc/security/advancedtls", "google.golang.org/grpc/security/advancedtls"},
		{"google.golang.org/grpc/security/advancedtls/internal", "google.golang.org/grpc/security/advancedtls"},
		// a prefix must end at a slash
		{"k8s.io/apiextensions-apiserver/pkg/apis", "k8s.io/apiextensions-apiserver/pkg/apis"},
		{"k8s.io/api/core/v1", "k8s.io/api"},
		{"k8s.io/apimachinery/pkg/runtime", "k8s.io/apimachinery"},
		{"helm.sh/helm/v3/pkg/action", "helm.sh/helm/v3"},
		{"gopkg.in/yaml.v3", "gopkg.in/yaml.v3"},
		{"go.yaml.in/yaml/v3", "go.yaml.in/yaml/v3"},
		{"golang.org/x/net/http2", "golang.org/x/net"},
		// the standard library, with its vendored packages
		{"runtime", "std"},
		{"net/http", "std"},
		{"internal/abi", "std"},
		{"crypto/internal/entropy/v1.0.0", "std"},
		{"vendor/golang.org/x/net/idna", "std"},
		// outside every module
		{"example.com/unknown/pkg", "example.com/unknown/pkg"},
	} {
		if got := idx.moduleOf(tc.pkg, mainPath); got != tc.want {
			t.Errorf("moduleOf(%q) = %q, want %q", tc.pkg, got, tc.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"gopkg.in/yaml%2ev3", "gopkg.in/yaml.v3"},
		{"a/b%2ec%2ed", "a/b.c.d"},
		{"plain/path", "plain/path"},
		{"bad%zz", "bad%zz"},
		{"trailing%2", "trailing%2"},
	} {
		if got := unescape(tc.in); got != tc.want {
			t.Errorf("unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
