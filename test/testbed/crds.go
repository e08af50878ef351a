package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The route CRDs' modules, pinned (DESIGN §4) for every test bed, so that
// all serve the same HTTPRoute and VirtualService schemas.
const (
	GatewayAPIModule = "sigs.k8s.io/gateway-api@v1.6.3"
	IstioAPIModule   = "istio.io/api@v1.31.1"
)

// RouteCRDFiles are the CRD files of the Gateway API's standard channel
// (HTTPRoute among them) and the file of Istio's CRDs (VirtualService among
// them), from the pinned modules' own files, fetched through the Go module
// proxy (or its cache).
func RouteCRDFiles(ctx context.Context) (gatewayAPI []string, istio string, err error) {
	dirs, err := ModuleDirs(ctx, GatewayAPIModule, IstioAPIModule)
	if err != nil {
		return nil, "", err
	}
	gatewayAPI, err = filepath.Glob(filepath.Join(dirs[0], "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if err != nil || len(gatewayAPI) == 0 {
		return nil, "", fmt.Errorf("no Gateway API CRDs in %s: %v", dirs[0], err)
	}
	return gatewayAPI, filepath.Join(dirs[1], "kubernetes", "customresourcedefinitions.gen.yaml"), nil
}

// ModuleDirs downloads modules (module@version) and returns their folders.
func ModuleDirs(ctx context.Context, modules ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, modules...)...)
	cmd.Dir = os.TempDir() // outside any module: the versions are explicit
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %v: %v\n%s", modules, err, stderr.String())
	}
	var dirs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		if m.Error != "" || m.Dir == "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		dirs = append(dirs, m.Dir)
	}
	if len(dirs) != len(modules) {
		return nil, fmt.Errorf("go mod download %v: got %d folders", modules, len(dirs))
	}
	return dirs, nil
}
