"""What every command needs to run safely on any machine: errors that say the fix,
files written atomically, devices and precision, and the processes of a torchrun job."""
