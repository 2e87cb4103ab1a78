// Everything of kvsieve's public API (see engine.h to start).
#pragma once
#include "kvsieve/engine.h"
#include "kvsieve/error.h"
#include "kvsieve/eval.h"
#include "kvsieve/judgeq.h"
#include "kvsieve/model_files.h"
#include "kvsieve/policy.h"
#include "kvsieve/session.h"
