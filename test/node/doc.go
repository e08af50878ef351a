// Package node plays the kubelet and the Job controller for the test bed's
// API server, which runs neither: for every Job it creates the Pod from the
// Job's template (so admission, Pod Security and validation are the API
// server's own), requests a token for the Pod's ServiceAccount, runs the
// container's command as a local process the way a container would see the
// world, keeps its output as the Pod's log, and writes Pod and Job status so
// that Helm's wait for a hook Job ends as it would in a cluster.
//
// With Config.Deployments it also plays the Deployment, ReplicaSet and
// EndpointSlice controllers, the kubelet of the Deployments' Pods (marked
// Running and Ready at a fake address, their containers not run) and the
// garbage collector of what they own, so that Helm's --wait and --atomic and
// readiness checks of Deployments and Services behave as in a cluster;
// HoldUnready keeps a Deployment's Pods unready. deployments.go says what
// it does and does not do.
//
// The container's process runs in a private mount namespace (unshare) where
//   - /run is a fresh tmpfs holding only the ServiceAccount's token, the API
//     server's CA and the namespace at the in-cluster path
//     /var/run/secrets/kubernetes.io/serviceaccount (read-only);
//   - the root filesystem is remounted read-only when the container asks for
//     readOnlyRootFilesystem;
//   - it runs as the Pod's runAsUser and runAsGroup with no capabilities and
//     no_new_privs, HOME=/ and the working directory / unless the container
//     names one;
//   - its environment is exactly the container's env (valueFrom resolved),
//     KUBERNETES_SERVICE_HOST/PORT, HOSTNAME, HOME and PATH: nothing of the
//     test process, so no admin credentials.
//
// Images are not pulled: a container's command[0] is looked up in
// Config.Executables. It needs root (for unshare and setpriv, both from
// util-linux). This is test code only, never shipped.
package node
