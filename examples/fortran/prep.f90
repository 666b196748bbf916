! Minimal Fortran use of the aiaprep C ABI (include/aiaprep.h): prep INPUT OUTPUT
! Reads a level-1 FITS file, registers it to level 1.5 on the CPU with the default options
! (cubic B-spline, missing = min, full-disk check) and writes an int16 FITS file. Prints the
! same line as examples/c/prep.c (output geometry and the mean of the non-NaN pixels), then
! the T_OBS string keyword. Exits with status 1 and the library's message on failure.
!
!     gfortran examples/fortran/prep.f90 -Ltarget/release -laiaprep \
!         -Wl,-rpath,$PWD/target/release -o prep_f
!
! Module `aiaprep`: bind(C) interfaces for the calls used here, in the header's terms:
! enums are integer(c_int), handles type(c_ptr) (passed by value; an `AiaprepX **out` is a
! type(c_ptr), intent(out) passed by reference), strings NUL-terminated character(c_char)
! arrays, sizes integer(c_size_t). Map pixels are row-major `ny` rows of `nx` floats, i.e. a
! Fortran array px(nx, ny) (column = x varies fastest), NaN = missing.
module aiaprep
    use, intrinsic :: iso_c_binding, only: c_ptr, c_int, c_int32_t, c_double, c_size_t, &
        c_char, c_null_char, c_associated, c_f_pointer
    implicit none
    private

    ! enum AiaprepStatus
    integer(c_int), parameter, public :: AIAPREP_OK = 0, AIAPREP_ERR_ARGUMENT = 1, &
        AIAPREP_ERR_IO = 2, AIAPREP_ERR_FORMAT = 3, AIAPREP_ERR_KEYWORD = 4, &
        AIAPREP_ERR_NOT_FULL_DISK = 5, AIAPREP_ERR_OUTPUT_EXISTS = 6, AIAPREP_ERR_PSF = 7, &
        AIAPREP_ERR_BACKEND = 8, AIAPREP_ERR_INTERNAL = 9
    ! enum AiaprepBackend
    integer(c_int), parameter, public :: AIAPREP_BACKEND_AUTO = 0, AIAPREP_BACKEND_CPU = 1, &
        AIAPREP_BACKEND_CUDA = 2
    ! enum AiaprepInterpolation
    integer(c_int), parameter, public :: AIAPREP_INTERP_NEAREST = 0, &
        AIAPREP_INTERP_LINEAR = 1, AIAPREP_INTERP_SPLINE = 2, AIAPREP_INTERP_KEYS = 3

    !> struct AiaprepRegisterOptions (fill with aiaprep_register_options_default).
    type, bind(C), public :: aiaprep_register_options
        integer(c_int) :: interpolation      ! AIAPREP_INTERP_*
        integer(c_int32_t) :: missing_mode   ! 0 = min(data), 1 = NaN, 2 = missing_value
        real(c_double) :: missing_value      ! DN, when missing_mode = 2
        integer(c_int32_t) :: check_full_disk
    end type aiaprep_register_options

    !> struct AiaprepWriteOptions (fill with aiaprep_write_options_default).
    type, bind(C), public :: aiaprep_write_options
        integer(c_int32_t) :: dtype          ! 0 = int16, 1 = float32
        integer(c_int32_t) :: compress       ! 0 = none, 1 = RICE_1
        integer(c_int32_t) :: overwrite      ! non-zero: replace an existing output
    end type aiaprep_write_options

    public :: aiaprep_last_error, aiaprep_version, aiaprep_context_new, aiaprep_context_free, &
        aiaprep_map_free, aiaprep_register_options_default, aiaprep_write_options_default, &
        aiaprep_read, aiaprep_register, aiaprep_write, aiaprep_map_data, aiaprep_map_dims, &
        aiaprep_map_get_f64, aiaprep_map_get_str
    public :: c_str, f_str, last_error_message

    interface
        function aiaprep_last_error() bind(C, name='aiaprep_last_error') result(msg)
            import :: c_ptr
            type(c_ptr) :: msg
        end function aiaprep_last_error

        function aiaprep_version() bind(C, name='aiaprep_version') result(v)
            import :: c_ptr
            type(c_ptr) :: v
        end function aiaprep_version

        function aiaprep_context_new(backend, out) bind(C, name='aiaprep_context_new') &
            result(status)
            import :: c_int, c_ptr
            integer(c_int), value :: backend
            type(c_ptr), intent(out) :: out
            integer(c_int) :: status
        end function aiaprep_context_new

        subroutine aiaprep_context_free(ctx) bind(C, name='aiaprep_context_free')
            import :: c_ptr
            type(c_ptr), value :: ctx
        end subroutine aiaprep_context_free

        subroutine aiaprep_map_free(map) bind(C, name='aiaprep_map_free')
            import :: c_ptr
            type(c_ptr), value :: map
        end subroutine aiaprep_map_free

        function aiaprep_register_options_default() &
            bind(C, name='aiaprep_register_options_default') result(opts)
            import :: aiaprep_register_options
            type(aiaprep_register_options) :: opts
        end function aiaprep_register_options_default

        function aiaprep_write_options_default() bind(C, name='aiaprep_write_options_default') &
            result(opts)
            import :: aiaprep_write_options
            type(aiaprep_write_options) :: opts
        end function aiaprep_write_options_default

        function aiaprep_read(path, out) bind(C, name='aiaprep_read') result(status)
            import :: c_char, c_ptr, c_int
            character(kind=c_char), dimension(*), intent(in) :: path
            type(c_ptr), intent(out) :: out
            integer(c_int) :: status
        end function aiaprep_read

        function aiaprep_register(ctx, map, opts, out) bind(C, name='aiaprep_register') &
            result(status)
            import :: c_ptr, c_int, aiaprep_register_options
            type(c_ptr), value :: ctx, map
            type(aiaprep_register_options), intent(in) :: opts
            type(c_ptr), intent(out) :: out
            integer(c_int) :: status
        end function aiaprep_register

        function aiaprep_write(map, path, opts) bind(C, name='aiaprep_write') result(status)
            import :: c_ptr, c_char, c_int, aiaprep_write_options
            type(c_ptr), value :: map
            character(kind=c_char), dimension(*), intent(in) :: path
            type(aiaprep_write_options), intent(in) :: opts
            integer(c_int) :: status
        end function aiaprep_write

        function aiaprep_map_data(map) bind(C, name='aiaprep_map_data') result(data)
            import :: c_ptr
            type(c_ptr), value :: map
            type(c_ptr) :: data
        end function aiaprep_map_data

        function aiaprep_map_dims(map, nx, ny) bind(C, name='aiaprep_map_dims') result(status)
            import :: c_ptr, c_size_t, c_int
            type(c_ptr), value :: map
            integer(c_size_t), intent(out) :: nx, ny
            integer(c_int) :: status
        end function aiaprep_map_dims

        function aiaprep_map_get_f64(map, key, value) bind(C, name='aiaprep_map_get_f64') &
            result(status)
            import :: c_ptr, c_char, c_double, c_int
            type(c_ptr), value :: map
            character(kind=c_char), dimension(*), intent(in) :: key
            real(c_double), intent(out) :: value
            integer(c_int) :: status
        end function aiaprep_map_get_f64

        function aiaprep_map_get_str(map, key, buf, len) bind(C, name='aiaprep_map_get_str') &
            result(status)
            import :: c_ptr, c_char, c_size_t, c_int
            type(c_ptr), value :: map
            character(kind=c_char), dimension(*), intent(in) :: key
            character(kind=c_char), dimension(*), intent(out) :: buf
            integer(c_size_t), value :: len
            integer(c_int) :: status
        end function aiaprep_map_get_str

        ! C strlen, for the library's NUL-terminated strings.
        function c_strlen(s) bind(C, name='strlen') result(n)
            import :: c_ptr, c_size_t
            type(c_ptr), value :: s
            integer(c_size_t) :: n
        end function c_strlen
    end interface

contains

    !> A Fortran string as a NUL-terminated C string (trailing blanks removed).
    pure function c_str(s) result(c)
        character(len=*), intent(in) :: s
        character(kind=c_char, len=len_trim(s) + 1) :: c
        c = trim(s)//c_null_char
    end function c_str

    !> A NUL-terminated C string owned by the library as a Fortran string ('' for NULL).
    function f_str(p) result(s)
        type(c_ptr), intent(in) :: p
        character(len=:), allocatable :: s
        character(kind=c_char, len=1), pointer :: chars(:)
        integer :: i, n
        if (.not. c_associated(p)) then
            s = ''
            return
        end if
        n = int(c_strlen(p))
        call c_f_pointer(p, chars, [n])
        allocate (character(len=n) :: s)
        do i = 1, n
            s(i:i) = chars(i)
        end do
    end function f_str

    !> The thread's last error message, or 'unknown error'.
    function last_error_message() result(s)
        character(len=:), allocatable :: s
        s = f_str(aiaprep_last_error())
        if (len(s) == 0) s = 'unknown error'
    end function last_error_message

end module aiaprep

program prep
    use, intrinsic :: iso_fortran_env, only: error_unit, output_unit
    use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_double, c_float, c_size_t, &
        c_char, c_null_char, c_f_pointer
    use, intrinsic :: ieee_arithmetic, only: ieee_is_nan
    use aiaprep
    implicit none

    type(c_ptr) :: ctx = c_null_ptr, in = c_null_ptr, out = c_null_ptr
    character(len=:), allocatable :: input, output
    integer :: rc

    if (command_argument_count() /= 2) then
        write (error_unit, '(a)') 'usage: prep INPUT OUTPUT'
        stop 2, quiet=.true.
    end if
    input = argument(1)
    output = argument(2)

    rc = run()
    call aiaprep_map_free(out)
    call aiaprep_map_free(in)
    call aiaprep_context_free(ctx)
    ! The main program's allocatables are not freed at its end (they are saved): free them
    ! so that valgrind sees no leak (scripts/memcheck.sh).
    deallocate (input, output)
    flush (output_unit)
    if (rc /= 0) stop 1, quiet=.true.

contains

    !> Command-line argument i, any length.
    function argument(i) result(s)
        integer, intent(in) :: i
        character(len=:), allocatable :: s
        integer :: n
        call get_command_argument(i, length=n)
        allocate (character(len=n) :: s)
        call get_command_argument(i, s)
    end function argument

    !> x with `digits` decimals like C's "%.Nf" (the F0.d edit descriptor would drop the
    !> leading zero of |x| < 1 in gfortran: ".600000").
    function fixed(x, digits) result(s)
        real(c_double), intent(in) :: x
        integer, intent(in) :: digits
        character(len=:), allocatable :: s
        character(len=48) :: buf
        character(len=16) :: fmt
        write (fmt, '(a, i0, a)') '(f48.', digits, ')'
        write (buf, fmt) x
        s = trim(adjustl(buf))
    end function fixed

    !> Report a failed call with the library's message; returns the exit status 1.
    integer function fail(what)
        character(len=*), intent(in) :: what
        write (error_unit, '(4a)') 'prep: ', what, ': ', last_error_message()
        fail = 1
    end function fail

    !> The work; handles are left in ctx/in/out for the caller to free.
    integer function run() result(status)
        type(aiaprep_register_options) :: ropt
        type(aiaprep_write_options) :: wopt
        integer(c_size_t) :: nx, ny, i, n
        real(c_double) :: crpix1, cdelt1, lvl, total, mean
        real(c_float), pointer :: px(:)
        character(kind=c_char, len=1) :: buf(80)
        character(len=80) :: t_obs

        if (aiaprep_context_new(AIAPREP_BACKEND_CPU, ctx) /= AIAPREP_OK) then
            status = fail('context')
            return
        end if
        if (aiaprep_read(c_str(input), in) /= AIAPREP_OK) then
            status = fail('read')
            return
        end if
        ropt = aiaprep_register_options_default()
        if (aiaprep_register(ctx, in, ropt, out) /= AIAPREP_OK) then
            status = fail('register')
            return
        end if
        wopt = aiaprep_write_options_default()
        wopt%overwrite = 1
        if (aiaprep_write(out, c_str(output), wopt) /= AIAPREP_OK) then
            status = fail('write')
            return
        end if
        if (aiaprep_map_dims(out, nx, ny) /= AIAPREP_OK) then
            status = fail('dims')
            return
        end if
        ! One call after another (Fortran's .or. need not short-circuit, and a later successful
        ! call would clear the message of a failed one).
        status = aiaprep_map_get_f64(out, c_str('CRPIX1'), crpix1)
        if (status == AIAPREP_OK) status = aiaprep_map_get_f64(out, c_str('CDELT1'), cdelt1)
        if (status == AIAPREP_OK) status = aiaprep_map_get_f64(out, c_str('LVL_NUM'), lvl)
        if (status == AIAPREP_OK) &
            status = aiaprep_map_get_str(out, c_str('T_OBS'), buf, size(buf, kind=c_size_t))
        if (status /= AIAPREP_OK) then
            status = fail('header')
            return
        end if
        t_obs = ''
        do i = 1, size(buf, kind=c_size_t)
            if (buf(i) == c_null_char) exit
            t_obs(i:i) = buf(i)
        end do

        ! The pixels as a flat view, in memory order (the same order as the C loop).
        call c_f_pointer(aiaprep_map_data(out), px, [nx*ny])
        total = 0
        n = 0
        do i = 1, nx*ny
            if (.not. ieee_is_nan(px(i))) then
                total = total + real(px(i), c_double)
                n = n + 1
            end if
        end do
        mean = 0
        if (n > 0) mean = total/real(n, c_double)

        ! printf("aiaprep %s: %zux%zu CRPIX1=%.3f CDELT1=%.6f LVL_NUM=%.1f mean=%.6f\n", ...)
        write (output_unit, '(a, a, a, i0, a, i0, 8a)') &
            'aiaprep ', f_str(aiaprep_version()), ': ', nx, 'x', ny, &
            ' CRPIX1=', fixed(crpix1, 3), ' CDELT1=', fixed(cdelt1, 6), &
            ' LVL_NUM=', fixed(lvl, 1), ' mean=', fixed(mean, 6)
        write (output_unit, '(2a)') 'T_OBS=', trim(t_obs)
        status = 0
    end function run

end program prep
