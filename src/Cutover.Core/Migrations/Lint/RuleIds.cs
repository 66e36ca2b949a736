namespace Cutover.Migrations.Lint;

/// <summary>Rule ids, named as squawk names them so users' existing ignore lists carry over.</summary>
public static class RuleIds
{
    public const string AddingRequiredField = "adding-required-field";
    public const string AddingFieldWithDefault = "adding-field-with-default";
    public const string AddingNotNullableField = "adding-not-nullable-field";
    public const string BanDropColumn = "ban-drop-column";
    public const string BanDropTable = "ban-drop-table";
    public const string BanDropDatabase = "ban-drop-database";
    public const string BanTruncate = "ban-truncate";
    public const string RenamingColumn = "renaming-column";
    public const string RenamingTable = "renaming-table";
    public const string ChangingColumnType = "changing-column-type";
    public const string RequireConcurrentIndexCreation = "require-concurrent-index-creation";
    public const string RequireConcurrentIndexDeletion = "require-concurrent-index-deletion";
    public const string BanConcurrentIndexCreationInTransaction = "ban-concurrent-index-creation-in-transaction";
    public const string ConstraintMissingNotValid = "constraint-missing-not-valid";
    public const string AddingForeignKeyConstraint = "adding-foreign-key-constraint";
    public const string DisallowedUniqueConstraint = "disallowed-unique-constraint";
    public const string AddingSerialPrimaryKeyField = "adding-serial-primary-key-field";
    public const string RequireLockTimeout = "require-lock-timeout";
    public const string PreferRobustStmts = "prefer-robust-stmts";
    public const string TransactionNesting = "transaction-nesting";
    public const string SyntaxError = "syntax-error";
    public const string SafetyAssuredWithoutReason = "safety-assured-without-reason";

    /// <summary>
    /// Errors break a running application or block it for the length of a table scan or rewrite; warnings are
    /// risky depending on table size or need a second look.
    /// </summary>
    public static Severity SeverityOf(string rule) => rule switch
    {
        AddingNotNullableField or RequireConcurrentIndexDeletion or ConstraintMissingNotValid or AddingForeignKeyConstraint
            or DisallowedUniqueConstraint or RequireLockTimeout or PreferRobustStmts => Severity.Warning,
        _ => Severity.Error,
    };

    public static readonly IReadOnlyList<string> All =
    [
        AddingRequiredField, AddingFieldWithDefault, AddingNotNullableField, BanDropColumn, BanDropTable, BanDropDatabase,
        BanTruncate, RenamingColumn, RenamingTable, ChangingColumnType, RequireConcurrentIndexCreation,
        RequireConcurrentIndexDeletion, BanConcurrentIndexCreationInTransaction, ConstraintMissingNotValid,
        AddingForeignKeyConstraint, DisallowedUniqueConstraint, AddingSerialPrimaryKeyField, RequireLockTimeout,
        PreferRobustStmts, TransactionNesting, SyntaxError, SafetyAssuredWithoutReason,
    ];
}
