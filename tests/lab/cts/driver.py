# Runs Debian's unmodified CTS (CTSlab.py) under Python 2.7 with two run-time patches of CTS
# bugs that stop it with the v1 (heartbeat) cluster manager, and a shorter StableTime:
#   python2.7 driver.py STABLE_SECONDS CTSlab.py-arguments...
# * HeartbeatCM has no Components(), which ComponentFail's constructor calls while the test
#   list is built: it returns [] (no v1 test uses components).
# * RandomTests.run tests `name in test` on a CTSTest, which has has_key() but no
#   __contains__ (a has_key() turned into `in`): CTSTest gets one that looks in its Stats.
# Nothing else changes; every check CTS makes stays as it is.
import os
import runpy
import sys

CTS_DIR = "/usr/share/heartbeat/cts"
sys.path.insert(0, CTS_DIR)

import CM_hb
import CTStests

stable = int(sys.argv[1])

CM_hb.HeartbeatCM.Components = lambda self: []
CTStests.CTSTest.__contains__ = lambda self, key: key in self.Stats

_init = CM_hb.HeartbeatCM.__init__


def _init_short_stable(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self["StableTime"] = stable


CM_hb.HeartbeatCM.__init__ = _init_short_stable

sys.argv = [os.path.join(CTS_DIR, "CTSlab.py")] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
