"""The TensorFlow program of the end-to-end tests, as a training image would ship it.

Every pod runs it with the TF_CONFIG the Job's shell prefix exported. It starts a
`tf.distribute.Server` for its own task, read from TF_CONFIG by TensorFlow's own
resolver. Parameter servers then serve until they are stopped. Each worker runs, in one
session, an op on every task of the cluster (reading that task's /etc/hostname, so the
test sees which pod really answers for which task name), and then meets the other
workers at a barrier of queues on the first parameter server, so that no worker leaves
while another still needs it. It prints one line, `E2E-RESULT {json}`.
"""

from __future__ import annotations

import json
import socket

import tensorflow as tf

# Long enough for slow starts, short enough that a broken cluster fails the pod.
OPERATION_TIMEOUT_MS = 120_000


def cluster_tasks(cluster: tf.train.ClusterSpec) -> list[str]:
    return [f"/job:{job}/task:{i}" for job in cluster.jobs for i in cluster.task_indices(job)]


def visit_every_task(
    server: tf.distribute.Server, cluster: tf.train.ClusterSpec, me: int
) -> dict[str, object]:
    workers = cluster.num_tasks("worker")
    with tf.Graph().as_default():
        hostnames = {}
        for task in cluster_tasks(cluster):
            with tf.device(task):
                hostnames[task] = tf.io.read_file("/etc/hostname")
        with tf.device("/job:ps/task:0"):
            inboxes = [
                tf.queue.FIFOQueue(workers, tf.int32, shapes=[[]], shared_name=f"barrier-{w}")
                for w in range(workers)
            ]
            arrive = tf.group(*[inbox.enqueue(me) for inbox in inboxes])
            arrived = inboxes[me].dequeue_many(workers)
        config = tf.compat.v1.ConfigProto(
            allow_soft_placement=False, operation_timeout_in_ms=OPERATION_TIMEOUT_MS
        )
        with tf.compat.v1.Session(server.target, config=config) as session:
            seen = session.run(hostnames)
            session.run(arrive)
            met = session.run(arrived)
    return {
        "seen": {task: name.decode().strip() for task, name in seen.items()},
        "arrived": sorted(int(i) for i in met),
    }


def main() -> None:
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec()
    task_type, task_id = resolver.task_type, resolver.task_id
    server = tf.distribute.Server(cluster, job_name=task_type, task_index=task_id, start=True)
    print(f"serving {task_type}:{task_id}", flush=True)
    if task_type != "worker":
        server.join()
    report = {
        "task": f"{task_type}:{task_id}",
        "hostname": socket.gethostname(),
        "cluster": cluster.as_dict(),
        **visit_every_task(server, cluster, task_id),
    }
    print("E2E-RESULT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
