// Package node plays the kubelet and the Job controller for the test bed's
// API server, which runs neither: for every Job it creates the Pod from the
// Job's template (so admission, Pod Security and validation are the API
// server's own), requests a token for the Pod's ServiceAccount, runs the
// container's command as a local process the way a container would see the
// world, keeps its output as the Pod's log, and writes Pod and Job status so
// that Helm's wait for a hook Job ends as it would in a cluster. A failed
// Pod is replaced until the Job's backoffLimit is spent; KillJobPod kills a
// Job's running Pod (SIGKILL to its process group, exit code 137), as an
// out-of-memory kill or a node's crash would, so that tests see a
// long-running Job retried, and WaitJobPodRunning waits for its next Pod.
// It plays the garbage collector and the kubelet for a deleted Job (gone,
// or with a deletionTimestamp): its running Pod's process gets SIGTERM,
// then SIGKILL after the Pod's terminationGracePeriodSeconds (capped by
// Config.StopGrace); no other Pod is started, the Pod is deleted, the
// Job's foregroundDeletion finalizer removed, and no Job status written.
// A Job that had already finished when deleted keeps its Pods (and any
// foregroundDeletion finalizer).
//
// An Indexed Job (completionMode: Indexed) runs its indexes 0..completions-1,
// at most parallelism Pods at once, lowest pending index first, each Pod
// made as the Job controller makes it: named <job>-<index>-<random>, the
// index in the batch.kubernetes.io/job-completion-index annotation and
// label, JOB_COMPLETION_INDEX read from the annotation (the API server does
// not add it; the controller does), and with backoffLimitPerIndex its
// failures so far in batch.kubernetes.io/job-index-failure-count. A failed
// index is retried until it has failed backoffLimitPerIndex+1 times, then
// it is failed for good (status.failedIndexes) while the others go on and
// the Job ends Failed (FailedIndexes); without backoffLimitPerIndex the
// failures of all indexes spend backoffLimit, and once it is spent the
// running Pods are stopped (counted as failed) and the Job fails. Status
// keeps active, succeeded, failed and completedIndexes as Pods end; the Job
// completes once every index has. KillJobIndexPod and WaitJobIndexRunning
// are KillJobPod and WaitJobPodRunning for one index; Run.Index says which.
// Pod hostnames, maxFailedIndexes and podFailurePolicy are not played.
//
// With Config.Deployments it also plays the Deployment, ReplicaSet and
// EndpointSlice controllers, the kubelet of the Deployments' Pods (marked
// Running and Ready at a fake address, their containers not run) and the
// garbage collector of what they own, so that Helm's --wait and --atomic and
// readiness checks of Deployments and Services behave as in a cluster;
// HoldUnready keeps a Deployment's Pods unready. It plays the pvc-protection
// controller too: a deleted PersistentVolumeClaim loses its
// kubernetes.io/pvc-protection finalizer (PVCProtection), and so goes, once
// no Pod of the namespace uses it (none that is not Succeeded or Failed, and
// none whose container the harness is still stopping). deployments.go says
// what it does and does not do.
//
// With Config.RunDeploymentPods too, the chosen Deployment Pods' first
// container really runs, as a Job's does (below), but in a network namespace
// of its own: its address 10.78.N.2 is the Pod's podIP and EndpointSlice
// address, reachable from the test process (so replicas share a port), and a
// loopback API server is proxied into the namespace at the same address, as
// are the host loopback addresses given to ForwardLoopback (a test's Redis).
// Its emptyDir and persistentVolumeClaim volumes are bind-mounted (a claim's
// directory, ClaimDir, outlives the Pods and is shared by them; the claim is
// marked Bound); its httpGet or tcpSocket readiness probe (periodSeconds, or
// Config.ProbePeriod) drives the Pod's Ready condition and so the
// Deployment's ready and available replicas and the EndpointSlices; a
// container without a probe is ready while it runs. An exited or killed
// (KillPod) container is restarted after Config.RestartBackoff with
// restartCount and lastState. Such a Pod is bound to the node NodeName, so
// that the API server deletes it gracefully: deleted (by a client, a scale
// down or the garbage collection of its ReplicaSet) it stays Terminating
// (deletionTimestamp set; not counted in the ReplicaSet's and Deployment's
// replicas but in their terminatingReplicas; a terminating, unready
// endpoint) while its process gets SIGTERM, then SIGKILL after
// deletionGracePeriodSeconds (capped by Config.StopGrace); once the process
// has exited its container is marked terminated (the Pod Succeeded or
// Failed), its namespace and veth pair are removed and the Pod is deleted
// with grace period 0, as a kubelet does. On Stop the processes are stopped
// the same way but the Pods are left. PodAddress and
// PodPID report a running Pod's address and process. Exec and grpc probes,
// other volume kinds and init containers leave the container waiting
// (CreateContainerConfigError) with a message; liveness and startup probes,
// lifecycle hooks, resource limits and Pod-to-Pod traffic are not supported.
// pods.go says more.
//
// The container's process runs in a private mount namespace (unshare) where
//
//   - /run is a fresh tmpfs holding only the ServiceAccount's token, the API
//     server's CA and the namespace at the in-cluster path
//     /var/run/secrets/kubernetes.io/serviceaccount (read-only);
//
//   - the root filesystem is remounted read-only when the container asks for
//     readOnlyRootFilesystem;
//
//   - it runs as the Pod's runAsUser and runAsGroup with no capabilities and
//     no_new_privs, HOME=/ and the working directory / unless the container
//     names one;
//
//   - its environment is exactly the container's env (valueFrom resolved),
//     KUBERNETES_SERVICE_HOST/PORT, HOSTNAME, HOME and PATH: nothing of the
//     test process, so no admin credentials.
//
//   - the volumes of a Pod run for RunDeploymentPods are bind-mounted at
//     their mountPath, which is made (empty, owned by root) on this machine's
//     root filesystem when it is missing, since there is no image to hold it.
//
// Images are not pulled: a container's command[0] is looked up in
// Config.Executables. It needs root (for unshare, nsenter and setpriv, from
// util-linux, and ip from iproute2). This is test code only, never shipped.
package node
