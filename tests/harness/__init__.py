"""What the test harness shares: the unit, integration and lab tests, the lab, the bench and molecule.

  wait.wait_until         a condition with a deadline and a message (never a fixed sleep)
  rtmp.C0C1, handshake    a publisher's first bytes, and whether a balancer answers them
  containers.dexec        a command in a container
  nginx_stat              which nginx-rtmp server carries which stream (also a script for molecule)
  publisher               ffmpeg publishers that stream until stopped (a script for containers)

Nothing here ships in the collection; `import harness` needs tests/ on sys.path.
"""
