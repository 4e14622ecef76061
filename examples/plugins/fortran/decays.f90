! Exponential decays with a Gaussian likelihood as a sampo plugin (Fortran).
!
!   y(t) = amplitude * exp(-t / lifetime) + N(0, noise_sd^2)
!
! The data (t_i, y_i) live in a COMMON block, as in many legacy codes: the
! library has one copy of them per process, so two threads must never call
! it at once. It exports no sampo_thread_safety, which sampo reads as
! SAMPO_SERIALIZED: one thread per rank, scale with MPI ranks.
!
! config = { noise_sd = 0.05 }: the data are generated in init from fixed
! values (amplitude 2, lifetime 1.5) and a fixed noise sequence, so the
! example needs no data file.
module decays_abi
  use iso_c_binding
  use, intrinsic :: ieee_arithmetic
  implicit none
  integer, parameter :: nmax = 200
  integer(c_int), parameter :: sampo_abi = 1
contains

  integer(c_int) function sampo_abi_version() bind(C, name="sampo_abi_version")
    sampo_abi_version = sampo_abi
  end function

  ! Copies a message into sampo's error buffer, NUL-terminated.
  subroutine set_error(err, err_len, message)
    type(c_ptr), value :: err
    integer(c_size_t), value :: err_len
    character(len=*), intent(in) :: message
    character(kind=c_char), pointer :: buf(:)
    integer :: i, n
    call c_f_pointer(err, buf, [err_len])
    n = min(len(message), int(err_len) - 1)
    do i = 1, n
      buf(i) = message(i:i)
    end do
    buf(n + 1) = c_null_char
  end subroutine

  ! The value of "noise_sd" in the JSON config (a flat object), or -1.
  real(c_double) function noise_from_config(config) result(sd)
    type(c_ptr), value :: config
    character(kind=c_char), pointer :: chars(:)
    character(len=4096) :: text
    integer :: n, at, ios, stop
    call c_f_pointer(config, chars, [4096])
    text = ' '
    n = 0
    do while (n < 4096)
      if (chars(n + 1) == c_null_char) exit
      n = n + 1
      text(n:n) = chars(n)
    end do
    sd = -1
    at = index(text(1:n), '"noise_sd"')
    if (at == 0) return
    at = at + index(text(at:n), ':')
    stop = scan(text(at:n), ',}')
    if (stop > 0) n = at + stop - 2
    read (text(at:n), *, iostat=ios) sd
    if (ios /= 0) sd = -1
  end function

  integer(c_int) function sampo_init(state, dim, config, ctx, n_outputs, err, err_len) &
      bind(C, name="sampo_init")
    type(c_ptr), value :: state, config, err
    integer(c_size_t), value :: dim, err_len
    type(c_ptr) :: ctx
    integer(c_size_t) :: n_outputs
    real(c_double) :: t(nmax), y(nmax), sigma
    integer :: n, i
    common /decay_data/ t, y, sigma, n
    if (dim /= 2) then
      call set_error(err, err_len, "decays: 2 parameters (amplitude, lifetime) expected")
      sampo_init = 1
      return
    end if
    sigma = noise_from_config(config)
    if (.not. (sigma > 0)) then
      call set_error(err, err_len, "decays: config.noise_sd must be a positive number")
      sampo_init = 1
      return
    end if
    n = 50
    do i = 1, n
      t(i) = 0.1d0 * i
      ! A fixed, deterministic "noise" sequence in [-1, 1].
      y(i) = 2.0d0 * exp(-t(i) / 1.5d0) + sigma * sin(12.9898d0 * i)
    end do
    ctx = c_null_ptr
    n_outputs = n
    sampo_init = 0
  end function

  integer(c_int) function sampo_log_density(ctx, x, dim, out) bind(C, name="sampo_log_density")
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: dim
    real(c_double), intent(in) :: x(dim)
    real(c_double), intent(out) :: out
    real(c_double) :: t(nmax), y(nmax), sigma, r, ss
    integer :: n, i
    common /decay_data/ t, y, sigma, n
    if (x(2) <= 0) then
      out = ieee_value(out, ieee_negative_inf)   ! a lifetime must be positive
      sampo_log_density = 0
      return
    end if
    ss = 0
    do i = 1, n
      r = (y(i) - x(1) * exp(-t(i) / x(2))) / sigma
      ss = ss + r * r
    end do
    out = -n * (log(sigma) + 0.5d0 * log(2 * acos(-1d0))) - 0.5d0 * ss
    sampo_log_density = 0
  end function

  integer(c_int) function sampo_forward(ctx, x, dim, yout, n_outputs) bind(C, name="sampo_forward")
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: dim, n_outputs
    real(c_double), intent(in) :: x(dim)
    real(c_double), intent(out) :: yout(n_outputs)
    real(c_double) :: t(nmax), y(nmax), sigma
    integer :: n, i
    common /decay_data/ t, y, sigma, n
    do i = 1, min(n, int(n_outputs))
      yout(i) = x(1) * exp(-t(i) / x(2))
    end do
    sampo_forward = 0
  end function

  subroutine sampo_free(ctx) bind(C, name="sampo_free")
    type(c_ptr), value :: ctx
  end subroutine
end module decays_abi
