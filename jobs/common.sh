# Shared by the batch scripts in jobs/ (sourced, not run): checks the arguments and builds the
# launch command from LAUNCHER and SRUN_MPI, which each script sets at its top.
#   srun:   srun --mpi=$SRUN_MPI (Open MPI from Debian/Ubuntu: pmix; `srun --mpi=list` shows yours)
#   mpirun: mpirun -n $SLURM_NTASKS (Open MPI's and MPICH's mpirun read the allocation from SLURM)

if [[ $# -lt 1 || ( $1 == study && $# -lt 2 ) ]]; then  # (jobs/study.slurm puts "study" first)
    if [[ ${1:-} == study ]]; then
        echo "usage: sbatch jobs/study.slurm STUDY.toml [study options...]" >&2
    else
        echo "usage: sbatch $JOB_SCRIPT CASE.toml [solver options...]" >&2
    fi
    exit 2
fi
if [[ ! -x $PYTHON ]]; then
    echo "jobs: no Python at PYTHON=$PYTHON; run \`make bootstrap\` in the project directory and submit from" \
         "there, or set PYTHON to the environment where the solver is installed" >&2
    exit 2
fi

# One BLAS/OpenMP thread per rank: the ranks already use every core they were given.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# Open MPI's mpirun, when it is signalled itself (the time limit, scancel --full), sends the ranks
# SIGCONT, waits odls_base_sigkill_timeout seconds, sends SIGTERM, waits as long again, then SIGKILL.
# Its default of 1 s leaves a rank no time to finish its step and write a checkpoint; a third of
# SLURM's KillWait (the grace between SLURM's SIGTERM and its SIGKILL) leaves it about that much
# while mpirun still ends within the grace. mpirun waits as long after any rank's non-zero exit
# too (an input error, the stop at SIGUSR1 before a requeue), so it is at most 30 s: twice that
# stays within the 120 s that --signal=B:USR1@120 leaves. MPIRUN_SIGKILL_TIMEOUT (1 to 600 s)
# sets it by hand.
sigkill_timeout() {
    local wait
    wait=$(scontrol show config 2>/dev/null | awk '$1 == "KillWait" {print $3}')
    [[ $wait =~ ^[0-9]+$ ]] || wait=30
    wait=$(( wait / 3 > 1 ? wait / 3 : 1 ))
    echo $(( wait < 30 ? wait : 30 ))
}
if [[ -n ${MPIRUN_SIGKILL_TIMEOUT:-} ]] && ! [[ $MPIRUN_SIGKILL_TIMEOUT =~ ^[0-9]+$ && $MPIRUN_SIGKILL_TIMEOUT -ge 1 \
        && $MPIRUN_SIGKILL_TIMEOUT -le 600 ]]; then
    echo "jobs: MPIRUN_SIGKILL_TIMEOUT must be a whole number of seconds from 1 to 600, got '$MPIRUN_SIGKILL_TIMEOUT'" >&2
    exit 2
fi

case $LAUNCHER in
    srun)   launch=(srun --mpi="$SRUN_MPI" --ntasks="${SLURM_NTASKS:-1}" --kill-on-bad-exit=1) ;;
    mpirun) launch=(mpirun -n "${SLURM_NTASKS:-1}")
            export OMPI_MCA_odls_base_sigkill_timeout=${MPIRUN_SIGKILL_TIMEOUT:-$(sigkill_timeout)} ;;
    *)      echo "jobs: LAUNCHER must be srun or mpirun, got '$LAUNCHER'" >&2; exit 2 ;;
esac

# The solver's rank 0 records the run's exit status here: a launcher may report another one
# (Open MPI's mpirun returns 1 after a SIGTERM even when every rank stopped with 75).
export SOLVER_STATUS_FILE=${SOLVER_STATUS_FILE:-${SLURM_SUBMIT_DIR:-.}/.solver-status.${SLURM_JOB_ID:-$$}}
# (a device or a stream it names, /dev/stdout, is written in place and never removed)
[[ ! -f $SOLVER_STATUS_FILE ]] || rm -f "$SOLVER_STATUS_FILE"
# A run that was launched records a status here, 0 included: when the path is free now, a launcher
# that returns 0 with no status recorded did not run the solver to its end (a step that failed to
# launch: srun may return 0 after "task launch failed").
status_expected=""
[[ -e $SOLVER_STATUS_FILE ]] || status_expected=1
# (a script may unset it before it launches, as jobs/scaling.slurm does: under set -u the trap must
# not read an unset variable)
trap '[[ -z ${SOLVER_STATUS_FILE:-} ]] || rm -f "$SOLVER_STATUS_FILE"' EXIT

# run_status LAUNCHER_STATUS: the solver's own status when it recorded one, else the launcher's
run_status() {
    local recorded=""
    if [[ -f $SOLVER_STATUS_FILE ]]; then
        read -r recorded _ < "$SOLVER_STATUS_FILE" || true
        rm -f "$SOLVER_STATUS_FILE"
    fi
    if [[ $recorded =~ ^[0-9]+$ ]]; then
        if [[ $recorded != "$1" ]]; then
            echo "the launcher returned $1; the solver recorded status $recorded ($SOLVER_STATUS_FILE): using $recorded" >&2
        fi
        echo "$recorded"
    elif [[ $1 == 0 && -n $status_expected ]]; then
        echo "the launcher returned 0, but the solver recorded no status ($SOLVER_STATUS_FILE): it did not run to" \
             "its end (a step that failed to launch?); using 1" >&2
        echo 1
    else
        echo "$1"
    fi
}

# not_launched LAUNCHER_STATUS RECORDED: whether the launcher returned 0 while the solver recorded
# no status (RECORDED is the status file's content, read before run_status removes it)
not_launched() {
    [[ $1 == 0 && -z $2 && -n $status_expected ]]
}
